/**
 * RFC 9457 problem details: the one shape every error answer of the API takes. Only the HTTP layer knows
 * status codes; everything below it speaks stable string codes, mapped here.
 */
import type { FastifyReply } from "fastify";
import type { DomainRefusal } from "../domain/errors.js";
import { problemDetails, replyProblem, type ProblemDetails } from "../http/problem-details.js";

/** Every code the API answers with; the contract's codes plus the HTTP layer's own. */
export type ProblemCode =
  | DomainRefusal["code"]
  | "not_found"
  | "webhook_not_found"
  | "delivery_not_found"
  | "unauthorized"
  | "customer_mismatch"
  | "payload_too_large"
  | "unsupported_media_type"
  | "method_not_allowed"
  | "unavailable"
  | "internal_error"
  | WaitingRoomProblemCode;

/** The waiting room's codes (routes/waiting-room.ts, hooks/access-token-check.ts). */
export type WaitingRoomProblemCode =
  | "access_token_required"
  | "access_token_invalid"
  | "access_token_expired"
  | "queue_token_invalid"
  | "not_in_queue"
  | "queue_not_open"
  | "waiting_room_not_found"
  | "waiting_room_open";

const STATUS_OF: Record<ProblemCode, number> = {
  event_not_found: 404,
  order_not_found: 404,
  hold_not_found: 404,
  not_found: 404,
  webhook_not_found: 404,
  delivery_not_found: 404,
  sold_out: 409,
  seats_unavailable: 409,
  customer_limit_reached: 409,
  idempotency_key_in_use: 409,
  hold_not_active: 409,
  hold_expired: 410,
  hold_extension_limit: 409,
  sale_not_open: 409,
  sale_paused: 409,
  sale_closed: 409,
  invalid_transition: 409,
  capacity_below_taken: 409,
  idempotency_key_reused: 422,
  invalid_request: 422,
  unauthorized: 401,
  customer_mismatch: 403,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unavailable: 503,
  internal_error: 500,
  access_token_required: 403,
  access_token_invalid: 403,
  access_token_expired: 403,
  queue_token_invalid: 403,
  not_in_queue: 404,
  queue_not_open: 409,
  waiting_room_not_found: 404,
  waiting_room_open: 409,
};

const TITLE_OF: Record<ProblemCode, string> = {
  event_not_found: "Event not found",
  order_not_found: "Order not found",
  hold_not_found: "Hold not found",
  not_found: "Not found",
  webhook_not_found: "Webhook endpoint not found",
  delivery_not_found: "Webhook delivery not found",
  sold_out: "Sold out",
  seats_unavailable: "Seats unavailable",
  customer_limit_reached: "Customer limit reached",
  idempotency_key_in_use: "Idempotency key in use",
  hold_not_active: "Hold not active",
  hold_expired: "Hold expired",
  hold_extension_limit: "Hold extension limit reached",
  sale_not_open: "Sale not open",
  sale_paused: "Sale paused",
  sale_closed: "Sale closed",
  invalid_transition: "Invalid transition",
  capacity_below_taken: "Capacity below sold and held",
  idempotency_key_reused: "Idempotency key reused",
  invalid_request: "Invalid request",
  unauthorized: "Unauthorized",
  customer_mismatch: "Customer mismatch",
  method_not_allowed: "Method not allowed",
  payload_too_large: "Payload too large",
  unsupported_media_type: "Unsupported media type",
  unavailable: "Service unavailable",
  internal_error: "Internal error",
  access_token_required: "Access token required",
  access_token_invalid: "Access token invalid",
  access_token_expired: "Access token expired",
  queue_token_invalid: "Queue token invalid",
  not_in_queue: "Not in the queue",
  queue_not_open: "Queue not open",
  waiting_room_not_found: "Waiting room not found",
  waiting_room_open: "Waiting room already open",
};

/** Seconds a client should wait before retrying a 503 (or a 409 idempotency_key_in_use). */
export const RETRY_AFTER_SECONDS = 1;

export interface Problem extends ProblemDetails<ProblemCode> {
  /** Only for `seats_unavailable`. */
  seats?: string[];
  /** Only for `sale_not_open` of a scheduled event: when the sale opens. */
  opensAt?: string;
}

export function statusOf(code: ProblemCode): number {
  return STATUS_OF[code];
}

export function problemOf(code: ProblemCode, detail: string, seats?: string[]): Problem {
  const problem: Problem = problemDetails(STATUS_OF[code], code, TITLE_OF[code], detail);
  if (seats !== undefined) problem.seats = seats;
  return problem;
}

export function problemOfRefusal(refusal: DomainRefusal): Problem {
  const problem = problemOf(
    refusal.code,
    refusal.detail,
    refusal.code === "seats_unavailable" ? refusal.seats : undefined,
  );
  if (refusal.opensAt !== undefined) problem.opensAt = refusal.opensAt;
  return problem;
}

/**
 * A refusal about the event, met through a hold or order id, names what the client asked for
 * (`hold_not_found`, not `event_not_found`).
 */
export function problemOfRefusalFor(
  refusal: DomainRefusal,
  missing: "hold_not_found" | "order_not_found",
): Problem {
  if (refusal.code === "event_not_found") return problemOf(missing, refusal.detail);
  return problemOfRefusal(refusal);
}

/** Sends a problem; a 503 and a 409 idempotency_key_in_use always carry Retry-After. */
export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  const retry = problem.status === 503 || problem.code === "idempotency_key_in_use";
  return replyProblem(reply, problem, retry ? RETRY_AFTER_SECONDS : undefined);
}
