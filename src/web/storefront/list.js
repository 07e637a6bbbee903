// The list of events on sale (GET /): name, date, price, availability, refreshed every few seconds.
// Cards are kept by event id and only their text changes, so focus and reading position stay put.
import { listEvents } from "./api.js";
import { el, priceRange, setText, stateText, when } from "./format.js";

const REFRESH_MS = 5000;
const HIDDEN_REFRESH_MS = 30_000;
const list = document.getElementById("events");
const status = document.getElementById("list-status");
const cards = new Map();

function availabilityText(event) {
  if (event.state !== "on_sale") return stateText(event);
  if (event.available === 0) return "Sold out";
  return `${event.available} of ${event.capacity} left`;
}

function card(event) {
  const name = el("a", { href: `/events/${encodeURIComponent(event.id)}`, class: "event-link" });
  const date = el("p", { class: "date" });
  const price = el("p", { class: "price" });
  const availability = el("p", { class: "availability" });
  const item = el(
    "li",
    { class: "event-card", "data-event-id": event.id },
    el("h2", {}, name),
    date,
    price,
    availability,
  );
  return { item, name, date, price, availability };
}

function render(events) {
  const seen = new Set();
  for (const event of events) {
    seen.add(event.id);
    let parts = cards.get(event.id);
    if (!parts) {
      parts = card(event);
      cards.set(event.id, parts);
      list.append(parts.item);
    }
    setText(parts.name, event.name);
    setText(parts.date, event.startsAt ? when(event.startsAt) : "Date to be announced");
    setText(parts.price, priceRange(event));
    setText(parts.availability, availabilityText(event));
    parts.item.classList.toggle("sold-out", event.state === "on_sale" && event.available === 0);
  }
  for (const [id, parts] of cards) {
    if (!seen.has(id)) {
      parts.item.remove();
      cards.delete(id);
    }
  }
  setText(
    status,
    events.length === 0
      ? "No event is on sale right now."
      : `${events.length} ${events.length === 1 ? "event" : "events"} on sale.`,
  );
}

async function refresh() {
  try {
    render(await listEvents());
  } catch {
    setText(status, "The box office cannot be reached right now; trying again.");
  }
  setTimeout(refresh, document.hidden ? HIDDEN_REFRESH_MS : REFRESH_MS);
}

refresh();
