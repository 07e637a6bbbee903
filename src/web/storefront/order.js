// The order page, reached by its secret link: /orders/{orderId}#secret=… (the fragment never leaves the
// browser). A link with ?secret= works too; the secret is then moved into the fragment and the query
// dropped from the address bar. The secret goes to the API in X-Order-Secret only.
import { call } from "./api.js";
import { el, money, setText, when } from "./format.js";

const $ = (id) => document.getElementById(id);
const orderId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");

function secretOfAddress() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("secret");
  if (fromHash) return fromHash;
  const fromQuery = new URLSearchParams(location.search).get("secret");
  if (fromQuery)
    history.replaceState(null, "", `${location.pathname}#secret=${encodeURIComponent(fromQuery)}`);
  return fromQuery;
}

const secret = secretOfAddress();
const headers = secret ? { "x-order-secret": secret } : {};
const STATUS_WORDS = { confirmed: "Confirmed", cancelled: "Cancelled" };

function render(order, eventName) {
  setText($("order-event"), eventName);
  setText($("order-id"), order.id);
  setText($("order-state"), STATUS_WORDS[order.status] ?? order.status);
  setText($("order-created"), when(order.createdAt));
  $("seats-row").hidden = !order.seats;
  setText($("order-seats"), (order.seats ?? []).join(", "));
  $("order-lines").replaceChildren(
    ...order.lines.map((line) =>
      el("li", {
        text: `${line.quantity} × ${line.name} (${money(line.unitPrice, order.currency)}) — ${money(line.subtotal, order.currency)}`,
      }),
    ),
  );
  setText($("order-total"), money(order.total, order.currency));
  $("cancel-box").hidden = order.status !== "confirmed";
  $("order").hidden = false;
}

async function load() {
  const answer = await call("GET", `/v1/orders/${encodeURIComponent(orderId)}`, { headers });
  if (!answer.ok) {
    setText($("order-status"), "");
    setText(
      $("message"),
      answer.status === 404
        ? "No order answers this link. Check that you copied all of it."
        : "The box office cannot be reached right now. Try again in a moment.",
    );
    return null;
  }
  const order = answer.body;
  const event = await call("GET", `/v1/events/${encodeURIComponent(order.eventId)}`);
  render(order, event.ok ? event.body.name : "");
  setText(
    $("order-status"),
    order.status === "cancelled" ? "This order is cancelled." : "Your order is confirmed.",
  );
  return order;
}

$("cancel").addEventListener("click", () => {
  $("cancel-confirm").hidden = false;
  $("cancel").hidden = true;
  $("cancel-no").focus();
});
$("cancel-no").addEventListener("click", () => {
  $("cancel-confirm").hidden = true;
  $("cancel").hidden = false;
  $("cancel").focus();
});
$("cancel-yes").addEventListener("click", async () => {
  $("cancel-yes").disabled = true;
  const answer = await call("POST", `/v1/orders/${encodeURIComponent(orderId)}/cancel`, {
    headers,
    onRetry: (delayMs) => setText($("order-status"), `Busy; trying again in ${Math.ceil(delayMs / 1000)} s.`),
  });
  $("cancel-yes").disabled = false;
  if (answer.ok) {
    $("cancel-confirm").hidden = true;
    $("cancel").hidden = false;
    await load();
    setText($("order-status"), "Your order is cancelled; the tickets are back on sale.");
  } else
    setText(
      $("message"),
      answer.body?.detail ? `Not cancelled: ${answer.body.detail}` : "Not cancelled; try again.",
    );
});

load();
