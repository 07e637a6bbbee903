/**
 * Idempotency keys at the HTTP layer: the fingerprint that says whether a repeat is "the same request",
 * and the in-process registry of keys still running. Across instances the store serializes replays; this
 * registry only turns a second concurrent copy in the same process into a quick 409.
 */
import { hash } from "node:crypto";
import type { Idempotency } from "../domain/sale.js";

/** JSON with object keys sorted at every level, so that key order never changes a fingerprint. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/**
 * sha256 of method, route pattern, resource id and canonical body: what "the same request" means.
 * (`hash` is the one-shot form of createHash: the same digest, without a Hash object per request.)
 */
export function fingerprintOf(
  method: string,
  routePattern: string,
  resourceId: string,
  body: unknown,
): string {
  return hash("sha256", `${method}\n${routePattern}\n${resourceId}\n${canonicalJson(body)}`, "hex");
}

/** The Idempotency of a request, or null when it carries no key. */
export function idempotencyOf(
  key: string | undefined,
  method: string,
  routePattern: string,
  resourceId: string,
  body: unknown,
): Idempotency | null {
  if (key === undefined) return null;
  return { key, fingerprint: fingerprintOf(method, routePattern, resourceId, body) };
}

/**
 * The key as the store keeps it: the client's key scoped to the customer it acts for (the verified
 * buyer's `sub`, the body's customerId without verified buyers, the hold's owner for a confirm), hashed
 * so that it stays printable and bounded whatever the two are. One buyer's key can then never find,
 * claim or replay another buyer's answer: the same key from two customers is two keys.
 */
export function scopedKey(customerId: string, key: string): string {
  // A customer id is printable text, so NUL cannot occur in it: the pair is unambiguous.
  return `c1.${hash("sha256", `${customerId}\u0000${key}`, "base64url")}`;
}

/** Keys whose request is still running in this process, scoped per event as the store scopes them. */
export class InFlightKeys {
  readonly #running = new Set<string>();

  /** Claims the key; false when a request with it is already running here. */
  tryClaim(eventId: string, key: string): boolean {
    const scoped = `${eventId}\u0000${key}`;
    if (this.#running.has(scoped)) return false;
    this.#running.add(scoped);
    return true;
  }

  release(eventId: string, key: string): void {
    this.#running.delete(`${eventId}\u0000${key}`);
  }

  get size(): number {
    return this.#running.size;
  }
}
