// Money, times and countdowns as a buyer reads them. Every value is put into the page as text.

/** Minor units (cents) of `currency` as the browser's locale writes money. */
export function money(minor, currency) {
  let format;
  try {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency });
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}

/** The lowest price of an event's ticket types or zones, as "Free", "€45.00" or "from €20.00". */
export function priceRange(event) {
  const prices = (event.kind === "general" ? event.ticketTypes : event.priceZones).map((t) => t.price);
  if (prices.length === 0) return "Free";
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  if (high === 0) return "Free";
  return low === high ? money(low, event.currency) : `from ${money(low, event.currency)}`;
}

/** "1 h 02 min 05 s", "4:05" — the time left until `untilMs`, never negative. */
export function countdown(untilMs, nowMs = Date.now()) {
  const total = Math.max(0, Math.ceil((untilMs - nowMs) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (hours > 0) return `${hours}:${two(minutes)}:${two(seconds)}`;
  return `${minutes}:${two(seconds)}`;
}

/** A date and time in the buyer's locale, or "" for null. */
export function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Builds an element with text (never HTML) and attributes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "hidden") node.hidden = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** Sets an element's text only when it changed (a live region then speaks only real changes). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** The words a buyer reads for a sale's state. */
export function stateText(event) {
  switch (event.state) {
    case "on_sale":
      return event.available === 0 ? "Sold out" : "On sale";
    case "scheduled":
      return event.salesStartAt ? `On sale from ${when(event.salesStartAt)}` : "Not on sale yet";
    case "paused":
      return "Sale paused";
    case "closed":
      return "Sale closed";
    default:
      return "Not on sale";
  }
}
