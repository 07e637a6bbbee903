/**
 * The one check of `Authorization: Bearer <admin token>`, for the instance's admin routes, the
 * balancer's `/_lb/backends` calls and the control server's restart.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const BEARER = "Bearer ";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * Both sides are hashed before timingSafeEqual compares them, so they are the same length whatever was
 * sent: the time an answer takes shows neither the token nor its length.
 */
export class AdminTokenCheck {
  readonly #expected: Buffer | undefined;

  /** `token` undefined or empty: no admin token is set, and nobody is admin. */
  constructor(token: string | undefined) {
    this.#expected = token ? digest(token) : undefined;
  }

  /** True when `authorization`, the header's value, is `Bearer <the token>`. */
  allows(authorization: string | undefined): boolean {
    if (this.#expected === undefined || typeof authorization !== "string") return false;
    if (authorization.length <= BEARER.length || !authorization.startsWith(BEARER)) return false;
    return timingSafeEqual(digest(authorization.slice(BEARER.length)), this.#expected);
  }
}
