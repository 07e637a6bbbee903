/**
 * The one base class for every error boxoffice raises on purpose. `code` is stable and machine-readable
 * (like fastify's FST_ERR_* or undici's UND_ERR_*); only the HTTP layer turns codes into status codes.
 */
export class BoxofficeError extends Error {
  /** Stable, machine-readable code; never parse `message`. */
  readonly code: string;
  /**
   * True when the failure is a fault to retry later (lock busy, store down, lease lost): the HTTP layer
   * answers 503 with Retry-After. Usually nothing was changed; a commit whose answer was lost may have
   * been applied, which is why a retry with the same Idempotency-Key answers as the first attempt did.
   */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** The outcome codes of the v1 API (docs/api.md) that the domain and the store can produce. */
export type DomainErrorCode =
  | "event_not_found"
  | "order_not_found"
  | "hold_not_found"
  | "sold_out"
  | "seats_unavailable"
  | "customer_limit_reached"
  | "idempotency_key_in_use"
  | "idempotency_key_reused"
  | "invalid_request"
  | "hold_expired"
  | "hold_not_active"
  | "hold_extension_limit"
  | "sale_not_open"
  | "sale_paused"
  | "sale_closed"
  | "invalid_transition"
  | "capacity_below_taken";

/** A rule said no. Carried as data in an Outcome (so it can be stored and replayed for an idempotency key). */
export interface DomainRefusal {
  code: DomainErrorCode;
  detail: string;
  /** For `seats_unavailable`: the seats that are held or sold. */
  seats?: string[];
  /** For `sale_not_open` of a scheduled event: when the sale opens (RFC 3339). */
  opensAt?: string;
}

/** A request broke a domain rule; thrown where a single answer is wanted (event creation, validation). */
export class DomainError extends BoxofficeError {
  readonly refusal: DomainRefusal;
  constructor(refusal: DomainRefusal) {
    super(refusal.code, refusal.detail);
    this.refusal = refusal;
  }
}

/**
 * A setting is wrong or two settings do not fit together (`INVALID_CONFIG`): the one way to refuse a
 * configuration, whether the config parsers, a factory (a lock the store cannot honour) or the admin-token
 * file find it. It lives here, below every layer, so that a factory need not import `config/`.
 */
export class ConfigError extends BoxofficeError {
  constructor(message: string) {
    super("INVALID_CONFIG", message);
  }
}
