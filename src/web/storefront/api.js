// The storefront's only way to the server: the public HTTP API (docs/api.md), same origin, JSON.
// A 503 (or a lost connection) is retried with exponential backoff and full jitter, at least the
// server's Retry-After apart, with the same Idempotency-Key, so a retry never buys twice.

const MAX_ATTEMPTS = 6;
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;

/** A fresh Idempotency-Key for one checkout attempt (kept across its retries). */
export function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How long to wait before attempt `attempt` (1-based), at least what the server asked for. */
export function retryDelayMs(attempt, retryAfterSeconds) {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
  const jittered = Math.random() * ceiling;
  const asked = Number.isFinite(retryAfterSeconds) ? retryAfterSeconds * 1000 : 0;
  return Math.max(asked, jittered, 250);
}

/**
 * Calls the API. Resolves to { ok, status, body } where body is the parsed JSON (a problem's
 * members on errors: code, detail, …) or null. `onRetry(delayMs, attempt)` hears each wait.
 */
export async function call(method, path, options = {}) {
  const headers = { accept: "application/json", ...(options.headers ?? {}) };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
  const retries = options.retry === false ? 1 : MAX_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch {
      if (attempt >= retries) return { ok: false, status: 0, body: { code: "network_error" } };
      const delayMs = retryDelayMs(attempt, NaN);
      options.onRetry?.(delayMs, attempt);
      await sleep(delayMs);
      continue;
    }
    let body = null;
    const text = await response.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    // A 503, or the same key still running elsewhere: wait, then send the very same request again.
    const inUse = response.status === 409 && body?.code === "idempotency_key_in_use";
    if ((response.status === 503 || inUse) && attempt < retries) {
      const delayMs = retryDelayMs(attempt, Number(response.headers.get("retry-after")));
      options.onRetry?.(delayMs, attempt);
      await sleep(delayMs);
      continue;
    }
    return { ok: response.ok, status: response.status, body };
  }
}

/** Every event a buyer may see: published, not closed; a few pages at most. */
export async function listEvents(maxPages = 10) {
  const events = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const query = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : "?limit=100";
    const answer = await call("GET", `/v1/events${query}`);
    if (!answer.ok) throw Object.assign(new Error("events unavailable"), { answer });
    events.push(...answer.body.events);
    cursor = answer.body.nextCursor;
    if (!cursor) break;
  }
  return events.filter((e) => e.state === "on_sale" || e.state === "scheduled" || e.state === "paused");
}
