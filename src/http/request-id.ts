/**
 * Request ids (`X-Request-Id`), shared by the balancer and the instances: a client's id is taken when it
 * is safe to copy into logs and headers (bounded, visible characters only), else one is made. The
 * balancer passes the id on; the instance logs it with its own lines and echoes it in its answer.
 */
import { randomBytes } from "node:crypto";

export const REQUEST_ID_HEADER = "x-request-id";

/** Longest id taken from a client; a UUID is 36, a W3C trace id 32. */
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * Letters, digits and `- _ . : + = / ~`: UUIDs, ULIDs, base64 and trace ids fit; no space, quote,
 * comma, semicolon, backslash or control byte, so an id cannot split a log line or a header list.
 */
const SAFE_REQUEST_ID = /^[A-Za-z0-9\-_.:+=/~]{1,128}$/;

/** Whether a client's id may be taken as it is. */
export function isSafeRequestId(value: string | undefined): value is string {
  return value !== undefined && value.length <= MAX_REQUEST_ID_LENGTH && SAFE_REQUEST_ID.test(value);
}

/**
 * Makes ids unique across processes without a random draw per request: a random prefix per process
 * (12 hex digits) and a counter, e.g. `5f0c2a9e81d4-1a`. Cheap enough for the balancer's hot path.
 */
export class RequestIdGenerator {
  readonly #prefix = randomBytes(6).toString("hex");
  #counter = 0;

  next(): string {
    this.#counter++;
    return `${this.#prefix}-${this.#counter.toString(36)}`;
  }
}
