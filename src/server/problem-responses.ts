/**
 * The problem answers routes list in their specs, worded once: /openapi.json shows these descriptions.
 */
import type { ResponseSpec } from "./route-spec.js";

/** A problem+json answer, described by the codes it carries. */
export const problem = (description: string): ResponseSpec => ({ description });

export const invalid = problem("invalid_request: the request's shape is wrong");
export const tooLarge = problem("payload_too_large: body over 64 KiB");
export const unavailable = problem(
  "unavailable: the lock or the store cannot be reached or is too busy; retry",
);

/** What an order or a hold may be refused with. */
export const sellRefusals: Record<number, ResponseSpec> = {
  404: problem("event_not_found"),
  409: problem(
    "sold_out, seats_unavailable (with `seats`), customer_limit_reached, sale_not_open (with `opensAt` when scheduled), sale_paused, sale_closed, or idempotency_key_in_use",
  ),
  403: problem(
    "access_token_required, access_token_invalid or access_token_expired: the event has a waiting room",
  ),
  413: tooLarge,
  415: problem("unsupported_media_type: the body is not application/json"),
  422: problem("invalid_request or idempotency_key_reused"),
  503: unavailable,
};
