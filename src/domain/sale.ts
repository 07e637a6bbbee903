/**
 * Orders, holds and the commands that change an event's inventory. A store applies a batch of commands
 * for one event in one transaction; each command gets its own Outcome, so one buyer's refusal never
 * fails another's sale in the same batch.
 */
import type { DomainRefusal } from "./errors.js";
import type { EventKind } from "./event.js";

export interface Order {
  id: string;
  eventId: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  status: "confirmed" | "cancelled";
  createdAt: string;
  cancelledAt: string | null;
}

export interface Hold {
  id: string;
  eventId: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  status: "active" | "confirmed" | "released" | "expired";
  expiresAt: string;
}

export const HOLD_TTL_SECONDS = { min: 30, max: 1800, default: 600 } as const;
/** How long an idempotency key's first answer is kept (the contract says at least 24 hours). */
export const IDEMPOTENCY_RETENTION_MS = 25 * 60 * 60 * 1000;

/**
 * An idempotency key and the fingerprint of the request it came with (method, route and body, hashed
 * by the HTTP layer). Keys are scoped to the event the request touches.
 */
export interface Idempotency {
  key: string;
  fingerprint: string;
}

/** What a buyer asks for: a number of general-admission tickets, or named seats. */
export type Selection = { quantity: number; seats: null } | { quantity: number; seats: string[] };

export type Command =
  | { type: "purchase"; customerId: string; selection: Selection; idempotency: Idempotency | null }
  | {
      type: "hold";
      customerId: string;
      selection: Selection;
      ttlSeconds: number;
      idempotency: Idempotency | null;
    }
  | { type: "confirm-hold"; holdId: string; idempotency: Idempotency | null }
  | { type: "release-hold"; holdId: string }
  | { type: "cancel-order"; orderId: string };

/** The result of one command. `replayed` is true when it is the stored first answer for its key. */
export type Outcome =
  | { ok: true; value: Order | Hold | null; replayed: boolean }
  | { ok: false; refusal: DomainRefusal; replayed: boolean };

/** Checks a selection against an event's kind and limits; returns a refusal or null. */
export function checkSelection(
  selection: Selection,
  event: { kind: EventKind; maxPerOrder: number },
): DomainRefusal | null {
  if (event.kind === "general" && selection.seats !== null) {
    return { code: "invalid_request", detail: "this is a general admission event: send quantity, not seats" };
  }
  if (event.kind === "seated" && selection.seats === null) {
    return { code: "invalid_request", detail: "this is a reserved seating event: send seats, not quantity" };
  }
  if (!Number.isInteger(selection.quantity) || selection.quantity < 1) {
    return { code: "invalid_request", detail: "quantity must be a whole number of at least 1" };
  }
  if (selection.quantity > event.maxPerOrder) {
    return {
      code: "invalid_request",
      detail: `at most ${event.maxPerOrder} tickets per order for this event`,
    };
  }
  if (selection.seats !== null && new Set(selection.seats).size !== selection.seats.length) {
    return { code: "invalid_request", detail: "a seat is listed twice" };
  }
  return null;
}
