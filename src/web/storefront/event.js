// The event page (GET /events/{eventId}): live availability and sale state, ticket types and quantities
// for general admission, a seat map with price zones for seated events, holds with a countdown, the
// waiting room when the event has one, and an order's confirmation. Talks to the public API only;
// every value from it is put into the page as text.
import { call, newIdempotencyKey } from "./api.js";
import { countdown, el, money, setText, when } from "./format.js";

const POLL_MS = 2000;
/** A tab in the background asks far less often: a surge has many of them. */
const HIDDEN_POLL_MS = 15_000;
const HOLD_TTL_SECONDS = 600;
const $ = (id) => document.getElementById(id);
const eventId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const base = `/v1/events/${encodeURIComponent(eventId)}`;

let event = null;
/** Seat id → its button, for the seated map. */
const seatButtons = new Map();
const chosen = new Set();
/** The hold in progress: { id, secret, expiresAtMs, lines, total, currency }. */
let hold = null;
let busy = false;
/** null: not known yet; false: no waiting room; "out" | "waiting" | "admitted". */
let room = null;

function stored(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Private browsing: nothing kept across pages.
  }
}

/** This device's anonymous customer id (the API's customerId with --buyer-auth none). */
function customerId() {
  let id = stored("boxoffice:customer");
  if (!id) {
    id = `web-${newIdempotencyKey()}`;
    store("boxoffice:customer", id);
  }
  return id;
}

const queueKey = `boxoffice:queue:${eventId}`;
const accessKey = `boxoffice:access:${eventId}`;
const holdKey = `boxoffice:hold:${eventId}`;

/** The waiting room's tokens for orders and holds, when the buyer has been let in. */
function roomHeaders() {
  const queueToken = stored(queueKey);
  const accessToken = stored(accessKey);
  const headers = {};
  if (queueToken) headers["queue-token"] = queueToken;
  if (accessToken) headers["access-token"] = accessToken;
  return headers;
}

function say(text) {
  setText($("message"), text);
}
function progress(text) {
  setText($("progress"), text);
}

function onRetry(delayMs) {
  progress(
    `The box office is busy. Trying again in ${Math.ceil(delayMs / 1000)} s — this will not buy twice.`,
  );
}

/** The words for a refusal of the API (docs/api.md, Errors). */
function refusalText(answer) {
  const problem = answer.body ?? {};
  switch (problem.code) {
    case "sold_out":
      return event && event.available === 0
        ? "Sold out: every ticket has been sold."
        : "Sold out: not enough tickets are left for this order. Try fewer.";
    case "seats_unavailable":
      return `Seats just taken: ${(problem.seats ?? []).join(", ")}. Please pick other seats.`;
    case "sale_not_open":
      return problem.opensAt
        ? `The sale has not opened yet. It opens at ${when(problem.opensAt)}.`
        : "The sale has not opened yet.";
    case "sale_paused":
      return "The sale is paused for a moment. This page updates by itself when it resumes.";
    case "sale_closed":
      return "The sale has closed.";
    case "customer_limit_reached":
      return "You already have the most tickets one buyer may have for this event.";
    case "access_token_required":
    case "access_token_invalid":
    case "access_token_expired":
      return "This sale has a waiting room: join the queue, and come back here when it is your turn.";
    case "hold_expired":
      return "Your hold ran out before the confirmation arrived: the seats went back on sale and nothing was bought.";
    case "hold_not_active":
      return "This hold is no longer active.";
    case "unavailable":
      return "The box office is very busy and could not finish your request. Try again: it will not buy twice.";
    case "network_error":
      return "The box office cannot be reached. Check your connection and try again.";
    default:
      return problem.detail ? `Not done: ${problem.detail}` : "Something went wrong; nothing was bought.";
  }
}

// ——— the sale's state, availability and countdown ———

let countdownTarget = null;
function renderEvent() {
  setText($("event-name"), event.name);
  document.title = `${event.name} — boxoffice`;
  setText($("event-date"), event.startsAt ? when(event.startsAt) : "");
  setText($("event-description"), event.description ?? "");
  let state;
  countdownTarget = null;
  switch (event.state) {
    case "on_sale":
      state = event.available === 0 ? "Sold out." : "On sale now.";
      break;
    case "scheduled":
      state = event.salesStartAt
        ? `The sale has not opened yet. It opens at ${when(event.salesStartAt)}.`
        : "The sale has not opened yet.";
      if (event.salesStartAt) countdownTarget = Date.parse(event.salesStartAt);
      break;
    case "paused":
      state = "The sale is paused for a moment. This page updates by itself when it resumes.";
      break;
    case "closed":
      state = "The sale has closed.";
      break;
    default:
      state = "This event is not on sale.";
  }
  setText($("sale-state"), state);
  const soldOut = event.state === "on_sale" && event.available === 0;
  document.body.classList.toggle("sold-out", soldOut);
  setText(
    $("availability"),
    soldOut ? "No tickets left." : `${event.available} of ${event.capacity} tickets available.`,
  );
  tick();
  const canBuy = event.state === "on_sale" && !soldOut && room !== "out" && room !== "waiting";
  $("buy").disabled = !canBuy || busy;
  $("hold").disabled = !canBuy || busy || chosen.size === 0;
}

function tick() {
  const line = $("countdown-line");
  if (countdownTarget === null) {
    line.hidden = true;
    return;
  }
  line.hidden = false;
  setText($("countdown-label"), "Opens in");
  setText($("countdown"), countdown(countdownTarget));
  if (countdownTarget <= Date.now()) countdownTarget = null;
}

// ——— general admission ———

function renderTicketTypes() {
  const box = $("ticket-types");
  box.replaceChildren();
  const single = event.ticketTypes.length === 1;
  for (const type of event.ticketTypes) {
    const id = `qty-${type.id}`;
    const max = Math.min(type.maxPerOrder ?? event.maxPerOrder, event.maxPerOrder);
    const input = el("input", {
      type: "number",
      id,
      name: type.id,
      min: 0,
      max,
      value: single ? 1 : 0,
      inputmode: "numeric",
      class: "quantity",
    });
    input.addEventListener("input", renderGaTotal);
    box.append(
      el(
        "div",
        { class: "ticket-type" },
        el("label", { for: id, text: `${type.name} — ${money(type.price, event.currency)}` }),
        input,
        el("span", { class: "hint", text: `up to ${max}` }),
      ),
    );
  }
  renderGaTotal();
}

function chosenItems() {
  const items = [];
  for (const type of event.ticketTypes) {
    const quantity = Number($(`qty-${type.id}`).value);
    if (Number.isInteger(quantity) && quantity > 0)
      items.push({ ticketTypeId: type.id, quantity, price: type.price });
  }
  return items;
}

function renderGaTotal() {
  const total = chosenItems().reduce((sum, item) => sum + item.quantity * item.price, 0);
  setText($("ga-total"), money(total, event.currency));
}

async function buy(submit) {
  submit.preventDefault();
  const items = chosenItems();
  if (items.length === 0) {
    say("Choose how many tickets you want.");
    return;
  }
  for (const type of event.ticketTypes) {
    const input = $(`qty-${type.id}`);
    if (!input.checkValidity()) {
      say(`${type.name}: choose a whole number from 0 to ${input.max}.`);
      input.focus();
      return;
    }
  }
  const count = items.reduce((sum, item) => sum + item.quantity, 0);
  if (count > event.maxPerOrder) {
    say(`At most ${event.maxPerOrder} tickets in one order.`);
    return;
  }
  const body = { customerId: customerId() };
  if (event.ticketTypes.length === 1) body.quantity = items[0].quantity;
  else body.items = items.map(({ ticketTypeId, quantity }) => ({ ticketTypeId, quantity }));
  await act("Buying…", async () => {
    const answer = await call("POST", `${base}/orders`, {
      body,
      headers: roomHeaders(),
      idempotencyKey: newIdempotencyKey(),
      onRetry,
    });
    if (answer.status === 201) showOrder(answer.body);
    else refused(answer);
  });
}

// ——— the seat map ———

function zoneOf(seatId) {
  const [section, row] = seatId.split("-");
  const rowNumber = Number(row);
  let fallback = null;
  for (const [index, zone] of event.priceZones.entries()) {
    if (zone.section === null) fallback = { zone, index };
    else if (
      zone.section === section &&
      (!zone.rows || (rowNumber >= zone.rows.from && rowNumber <= zone.rows.to))
    )
      return { zone, index };
  }
  return fallback;
}

const STATUS_WORDS = { available: "available", held: "held by someone", sold: "sold" };

function seatLabel(seatId, status) {
  const zone = zoneOf(seatId);
  const [section, row, seat] = seatId.split("-");
  const price = zone ? `, ${zone.zone.name}, ${money(zone.zone.price, event.currency)}` : "";
  const mine = chosen.has(seatId) ? "" : status === "available" ? "" : `, ${STATUS_WORDS[status] ?? status}`;
  return `Section ${section}, row ${row}, seat ${seat}${price}${mine}`;
}

function renderZones() {
  const zones = $("zones");
  zones.replaceChildren();
  for (const [index, zone] of event.priceZones.entries()) {
    zones.append(
      el(
        "li",
        {},
        el("span", { class: `swatch zone-${index % 6}`, "aria-hidden": "true" }),
        `${zone.name} — ${money(zone.price, event.currency)}`,
      ),
    );
  }
  zones.append(el("li", {}, el("span", { class: "swatch taken", "aria-hidden": "true" }), "Taken"));
  zones.append(el("li", {}, el("span", { class: "swatch chosen", "aria-hidden": "true" }), "Your choice"));
}

function buildSeatMap(map) {
  const box = $("seat-map");
  box.replaceChildren();
  seatButtons.clear();
  let first = true;
  for (const section of map.sections) {
    const sectionBox = el("div", { class: "section" }, el("h3", { text: `Section ${section.name}` }));
    for (const row of section.rows) {
      const rowBox = el("div", {
        class: "seat-row",
        role: "group",
        "aria-label": `Section ${section.name}, row ${row.row}`,
      });
      rowBox.append(el("span", { class: "row-label", "aria-hidden": "true", text: row.row }));
      for (const seat of row.seats) {
        const zone = zoneOf(seat.id);
        const button = el("button", {
          type: "button",
          class: `seat zone-${zone ? zone.index % 6 : 0}`,
          "data-seat": seat.id,
          tabindex: first ? 0 : -1,
          text: seat.id.split("-")[2],
        });
        first = false;
        button.addEventListener("click", () => {
          takeTabStop(button);
          toggleSeat(seat.id);
        });
        seatButtons.set(seat.id, button);
        rowBox.append(button);
      }
      sectionBox.append(rowBox);
    }
    box.append(sectionBox);
  }
  box.addEventListener("keydown", moveFocus);
  updateSeatMap(map);
}

function updateSeatMap(map) {
  const lost = [];
  for (const section of map.sections) {
    for (const row of section.rows) {
      for (const seat of row.seats) {
        const button = seatButtons.get(seat.id);
        if (!button) continue;
        const mine = hold !== null && hold.seats.includes(seat.id);
        const status = mine ? "available" : seat.status;
        if (chosen.has(seat.id) && status !== "available") {
          chosen.delete(seat.id);
          lost.push(seat.id);
        }
        button.dataset.status = mine ? "mine" : status;
        button.setAttribute("aria-pressed", String(chosen.has(seat.id) || mine));
        if (status === "available" && !mine) button.removeAttribute("aria-disabled");
        else button.setAttribute("aria-disabled", "true");
        button.setAttribute(
          "aria-label",
          mine ? `${seatLabel(seat.id, "available")}, held for you` : seatLabel(seat.id, status),
        );
      }
    }
  }
  if (lost.length > 0) say(`Seats just taken: ${lost.join(", ")}. Please pick other seats.`);
  renderSelection();
}

function toggleSeat(seatId) {
  const button = seatButtons.get(seatId);
  if (!button || button.getAttribute("aria-disabled") === "true" || hold) return;
  if (chosen.has(seatId)) chosen.delete(seatId);
  else if (chosen.size >= event.maxPerOrder) {
    say(`At most ${event.maxPerOrder} seats in one order.`);
    return;
  } else chosen.add(seatId);
  button.setAttribute("aria-pressed", String(chosen.has(seatId)));
  button.setAttribute("aria-label", seatLabel(seatId, "available"));
  renderSelection();
}

function renderSelection() {
  if (chosen.size === 0) setText($("selection"), "No seat chosen.");
  else {
    const total = [...chosen].reduce((sum, id) => sum + (zoneOf(id)?.zone.price ?? 0), 0);
    setText(
      $("selection"),
      `${chosen.size} ${chosen.size === 1 ? "seat" : "seats"} chosen: ${[...chosen].join(", ")} — ${money(total, event.currency)}.`,
    );
  }
  if (event)
    $("hold").disabled =
      busy || chosen.size === 0 || event.state !== "on_sale" || room === "out" || room === "waiting";
}

/** Arrow keys move between seats (one tab stop for the whole map); Home and End go to a row's ends. */
function moveFocus(key) {
  const current = key.target.closest?.(".seat");
  if (!current) return;
  const row = current.parentElement;
  const seats = [...row.querySelectorAll(".seat")];
  const index = seats.indexOf(current);
  let next = null;
  if (key.key === "ArrowRight") next = seats[index + 1];
  else if (key.key === "ArrowLeft") next = seats[index - 1];
  else if (key.key === "Home") next = seats[0];
  else if (key.key === "End") next = seats[seats.length - 1];
  else if (key.key === "ArrowDown" || key.key === "ArrowUp") {
    const rows = [...$("seat-map").querySelectorAll(".seat-row")];
    const other = rows[rows.indexOf(row) + (key.key === "ArrowDown" ? 1 : -1)];
    if (other) {
      const otherSeats = other.querySelectorAll(".seat");
      next = otherSeats[Math.min(index, otherSeats.length - 1)];
    }
  } else return;
  key.preventDefault();
  if (!next) return;
  takeTabStop(next);
  next.focus();
}

/** The seat map is one tab stop: the seat last moved to or clicked. */
function takeTabStop(seat) {
  for (const other of $("seat-map").querySelectorAll('.seat[tabindex="0"]')) other.tabIndex = -1;
  seat.tabIndex = 0;
}

async function holdSeats() {
  if (chosen.size === 0) return;
  const seats = [...chosen];
  await act("Holding your seats…", async () => {
    const answer = await call("POST", `${base}/holds`, {
      body: { customerId: customerId(), seats, ttlSeconds: HOLD_TTL_SECONDS },
      headers: roomHeaders(),
      idempotencyKey: newIdempotencyKey(),
      onRetry,
    });
    if (answer.status === 201) {
      chosen.clear();
      startHold(answer.body, answer.body.secret);
      $("hold-heading").focus();
    } else {
      refused(answer);
      if (answer.body?.code === "seats_unavailable") {
        for (const seat of answer.body.seats ?? []) chosen.delete(seat);
      }
    }
    await refreshSeats();
  });
}

// ——— the hold and its countdown ———

let holdTimer = null;
function startHold(held, secret) {
  const lifetimeMs = Date.parse(held.expiresAt) - Date.now();
  hold = {
    id: held.id,
    secret,
    seats: held.seats ?? [],
    expiresAtMs: Date.now() + Math.max(0, lifetimeMs),
  };
  // Kept for this tab only, so a reload finds the hold again.
  try {
    sessionStorage.setItem(holdKey, JSON.stringify({ id: held.id, secret }));
  } catch {
    // Private browsing: a reload forgets the hold (it still expires by itself).
  }
  renderLines($("hold-lines"), held.lines, held.currency);
  setText($("hold-total"), money(held.total, held.currency));
  setText($("hold-warning"), "");
  $("hold-panel").hidden = false;
  $("seat-panel").classList.add("locked");
  clearInterval(holdTimer);
  holdTimer = setInterval(holdTick, 1000);
  holdTick();
}

function holdTick() {
  if (!hold) return;
  const leftMs = hold.expiresAtMs - Date.now();
  setText($("hold-timer"), countdown(hold.expiresAtMs));
  if (leftMs <= 60_000 && leftMs > 0) setText($("hold-warning"), "Less than a minute left.");
  if (leftMs <= 0) {
    endHold();
    say("Your hold has expired: the seats are back on sale. Pick them again if they are still free.");
  }
}

function endHold() {
  clearInterval(holdTimer);
  hold = null;
  try {
    sessionStorage.removeItem(holdKey);
  } catch {
    // nothing kept
  }
  $("hold-panel").hidden = true;
  $("seat-panel").classList.remove("locked");
  refreshSeats();
}

async function confirmHold() {
  if (!hold) return;
  const current = hold;
  await act("Confirming your order…", async () => {
    const answer = await call("POST", `/v1/holds/${encodeURIComponent(current.id)}/confirm`, {
      headers: { "x-order-secret": current.secret },
      idempotencyKey: `confirm-${current.id}`,
      onRetry,
    });
    if (answer.status === 201) {
      endHold();
      showOrder(answer.body);
    } else {
      refused(answer);
      if (answer.status === 410 || answer.body?.code === "hold_not_active") endHold();
    }
  });
}

async function releaseHold() {
  if (!hold) return;
  const current = hold;
  await act("Letting the seats go…", async () => {
    const answer = await call("DELETE", `/v1/holds/${encodeURIComponent(current.id)}`, {
      headers: { "x-order-secret": current.secret },
      onRetry,
    });
    if (answer.status === 204 || answer.status === 404) {
      endHold();
      say("");
      progress("The seats are released.");
    } else refused(answer);
  });
}

/** After a reload: the hold this tab made, when it is still active. */
async function resumeHold() {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(holdKey) ?? "null");
  } catch {
    kept = null;
  }
  if (!kept || typeof kept.id !== "string" || typeof kept.secret !== "string") return;
  const answer = await call("GET", `/v1/holds/${encodeURIComponent(kept.id)}`, {
    headers: { "x-order-secret": kept.secret },
  });
  if (answer.ok && answer.body.status === "active") startHold(answer.body, kept.secret);
  else sessionStorage.removeItem(holdKey);
}

// ——— orders ———

function renderLines(list, lines, currency) {
  list.replaceChildren(
    ...lines.map((line) =>
      el("li", {
        text: `${line.quantity} × ${line.name} (${money(line.unitPrice, currency)}) — ${money(line.subtotal, currency)}`,
      }),
    ),
  );
}

function showOrder(order) {
  renderLines($("order-lines"), order.lines, order.currency);
  setText($("order-total"), money(order.total, order.currency));
  // The secret rides in the fragment: never sent to a server, never in a Referer or an access log.
  $("order-link").href = `/orders/${encodeURIComponent(order.id)}#secret=${encodeURIComponent(order.secret)}`;
  $("order-panel").hidden = false;
  say("");
  progress("");
  $("order-heading").focus();
  refresh();
}

// ——— the waiting room ———

/** Whether the event has a waiting room, and where this buyer stands in it. */
async function checkRoom() {
  const queueToken = stored(queueKey);
  const answer = await call("GET", `${base}/queue`, {
    headers: queueToken ? { "queue-token": queueToken } : {},
  });
  if (answer.status === 404 && answer.body?.code === "waiting_room_not_found") {
    room = false;
    store(accessKey, null);
  } else if (answer.ok && answer.body.state === "admitted" && answer.body.accessToken) {
    room = "admitted";
    store(accessKey, answer.body.accessToken);
    showRoom(
      `It is your turn: you may buy until ${new Date(answer.body.sessionEndsAt).toLocaleTimeString()}.`,
      null,
    );
  } else if (answer.ok && (answer.body.state === "waiting" || answer.body.state === "pre-queue")) {
    room = "waiting";
    showRoom(
      "You are in the queue for this sale. Keep your place open; you may buy once it is your turn.",
      "Back to your place in the queue",
    );
  } else if (answer.status === 403 || answer.status === 404 || answer.ok) {
    room = "out";
    store(accessKey, null);
    showRoom(
      "This sale has a waiting room: join the queue, and you can buy once it is your turn.",
      "Join the queue",
    );
  }
}

function showRoom(text, linkText) {
  $("queue-panel").hidden = false;
  setText($("queue-text"), text);
  const link = $("queue-link");
  link.hidden = linkText === null;
  if (linkText) {
    link.href = `/queue/${encodeURIComponent(eventId)}`;
    setText(link, linkText);
  }
}

// ——— plumbing ———

function refused(answer) {
  progress("");
  say(refusalText(answer));
  const code = answer.body?.code;
  if (
    code === "access_token_required" ||
    code === "access_token_invalid" ||
    code === "access_token_expired"
  ) {
    store(accessKey, null);
    checkRoom();
  }
}

async function act(what, work) {
  if (busy) return;
  busy = true;
  say("");
  progress(what);
  for (const id of ["buy", "hold", "confirm", "release"]) $(id).disabled = true;
  try {
    await work();
  } finally {
    busy = false;
    for (const id of ["confirm", "release"]) $(id).disabled = false;
    if (event) renderEvent();
    renderSelection();
    if ($("progress").textContent === what) progress("");
  }
}

async function refreshSeats() {
  if (!event || event.kind !== "seated") return;
  const answer = await call("GET", `${base}/seats`, { retry: false });
  if (answer.ok) updateSeatMap(answer.body);
}

let stale = false;
async function refresh() {
  const answer = await call("GET", base, { retry: false });
  if (answer.ok) {
    event = answer.body;
    if (stale) progress("");
    stale = false;
    renderEvent();
    await refreshSeats();
  } else if (!stale && !busy) {
    stale = true;
    progress("The box office cannot be reached for a moment; the figures shown may be out of date.");
  }
}

async function start() {
  const answer = await call("GET", base);
  if (!answer.ok) {
    setText($("event-name"), answer.status === 404 ? "No such event" : "The box office cannot be reached");
    say(
      answer.status === 404 ? "This event does not exist. See the events on sale." : "Try again in a moment.",
    );
    return;
  }
  event = answer.body;
  await checkRoom();
  renderEvent();
  if (event.kind === "general") {
    renderTicketTypes();
    $("ga-form").hidden = false;
    $("ga-form").addEventListener("submit", buy);
  } else {
    renderZones();
    const map = await call("GET", `${base}/seats`);
    if (map.ok) buildSeatMap(map.body);
    $("seat-panel").hidden = false;
    $("hold").addEventListener("click", holdSeats);
    $("confirm").addEventListener("click", confirmHold);
    $("release").addEventListener("click", releaseHold);
    await resumeHold();
  }
  setInterval(tick, 1000);
  const poll = async () => {
    await refresh().catch(() => undefined);
    setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  };
  setTimeout(poll, POLL_MS);
}

start();
