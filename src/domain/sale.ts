/**
 * Orders, holds and the commands that change an event's inventory. A store applies a batch of commands
 * for one event in one transaction; each command gets its own Outcome, so one buyer's refusal never
 * fails another's sale in the same batch.
 */
import type { DomainRefusal } from "./errors.js";
import type { EventKind } from "./event.js";
import { isSeatId, PRINTABLE_TEXT_PATTERN } from "./event.js";
import { eventIdOfHold, eventIdOfOrder } from "./ids.js";
import { refusals } from "./refusals.js";
import type { ItemRequest, Line } from "./pricing.js";
import { TIER_ID_PATTERN } from "./pricing.js";

export interface Order {
  id: string;
  eventId: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  status: "confirmed" | "cancelled";
  createdAt: string;
  cancelledAt: string | null;
  /** What was bought, at the server's prices. */
  lines: Line[];
  /** The sum of the lines' subtotals, in minor units of `currency`. */
  total: number;
  currency: string;
  /** The payment provider's reference given when its hold was confirmed; null otherwise. */
  paymentReference: string | null;
}

export interface Hold {
  id: string;
  eventId: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  status: "active" | "confirmed" | "released" | "expired";
  expiresAt: string;
  /** When it was taken: an extension never takes it past createdAt + the event's maxHoldLifetimeSeconds. */
  createdAt: string;
  lines: Line[];
  total: number;
  currency: string;
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

/** A customer id: 1 to 200 printable characters (see PRINTABLE_TEXT_PATTERN). */
export const CUSTOMER_ID_PATTERN = PRINTABLE_TEXT_PATTERN;
/** An idempotency key: 1 to 200 printable ASCII characters, not starting or ending with a space. */
export const IDEMPOTENCY_KEY_PATTERN = "^[\\x21-\\x7E](?:[\\x20-\\x7E]{0,198}[\\x21-\\x7E])?$";
/** The most seats (or tickets) one order or hold asks for, whatever the event allows. */
export const MAX_TICKETS_PER_REQUEST = 1000;

const CUSTOMER_ID = new RegExp(CUSTOMER_ID_PATTERN, "u");
const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
/** A request fingerprint: the HTTP layer's is 64 hex digits; any printable ASCII up to 200 is taken. */
const FINGERPRINT = /^[\x21-\x7E]{1,200}$/;

/**
 * What a buyer asks for: general-admission tickets (`items` by ticket type, or null: `quantity` of the
 * event's only ticket type), or named seats. `quantity` is the number of tickets in all.
 */
export type Selection =
  | { quantity: number; seats: null; items?: ItemRequest[] | null }
  | { quantity: number; seats: string[]; items?: null };

/** A payment reference: 1 to 200 printable ASCII characters. */
export const PAYMENT_REFERENCE_PATTERN = "^[\\x21-\\x7E](?:[\\x20-\\x7E]{0,198}[\\x21-\\x7E])?$";
const PAYMENT_REFERENCE = new RegExp(PAYMENT_REFERENCE_PATTERN);
const TIER_ID = new RegExp(TIER_ID_PATTERN);

export type Command =
  | { type: "purchase"; customerId: string; selection: Selection; idempotency: Idempotency | null }
  | {
      type: "hold";
      customerId: string;
      selection: Selection;
      ttlSeconds: number;
      idempotency: Idempotency | null;
    }
  | {
      type: "confirm-hold";
      holdId: string;
      /** Kept on the order: where the operator's payment provider ties its payment to the sale. */
      paymentReference?: string | null;
      idempotency: Idempotency | null;
    }
  /** Moves an active hold's expiry to now + ttlSeconds, never past its lifetime's end. */
  | { type: "extend-hold"; holdId: string; ttlSeconds: number }
  | { type: "release-hold"; holdId: string }
  | { type: "cancel-order"; orderId: string };

/**
 * What one command came to: its value, or the rule that refused it. `replayed` is true when it is the
 * first answer stored for its idempotency key. `T` narrows the value where the command is known.
 */
export type Outcome<T extends Order | Hold | null = Order | Hold | null> =
  { ok: true; value: T; replayed: boolean } | { ok: false; refusal: DomainRefusal; replayed: boolean };

/**
 * An Outcome as a store keeps it for its idempotency key. Every later read of it is a replay, so
 * `replayed` is not kept (and the stored JSON stays as it always was).
 */
export type FirstAnswer = { ok: true; value: Order | Hold | null } | { ok: false; refusal: DomainRefusal };

/** The first answer to an idempotency key, with the fingerprint of the request that got it. */
export interface IdempotencyRecord {
  key: string;
  fingerprint: string;
  answer: FirstAnswer;
}

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

/**
 * Whether a store can take `command` at all, before any rule is asked: every string valid Unicode,
 * printable and bounded (a customer id, a key as the HTTP schema says), every seat id of the seat-id
 * shape, every number a safe integer, the hold's lifetime within HOLD_TTL_SECONDS. The HTTP layer
 * refuses all of this with 422 already; a store checks it again so that a command that slipped past
 * (another caller, a bug) fails alone instead of failing the statement its whole batch shares. A refusal
 * here is not stored for the command's idempotency key, as a 422 at the edge would not be.
 */
export function checkCommand(command: Command): DomainRefusal | null {
  const invalid = (detail: string): DomainRefusal => ({ code: "invalid_request", detail });
  if (typeof command !== "object" || command === null) return invalid("not a command");
  if ("idempotency" in command && command.idempotency !== null) {
    const { key, fingerprint } = (command.idempotency ?? {}) as Partial<Idempotency>;
    if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key)) {
      return invalid("an Idempotency-Key is 1 to 200 printable ASCII characters");
    }
    if (typeof fingerprint !== "string" || !FINGERPRINT.test(fingerprint)) {
      return invalid("the request's fingerprint is not printable ASCII");
    }
  }
  switch (command.type) {
    case "purchase":
    case "hold": {
      if (typeof command.customerId !== "string" || !CUSTOMER_ID.test(command.customerId)) {
        return invalid("customerId must be 1 to 200 printable characters");
      }
      const problem = checkSelectionShape(command.selection);
      if (problem) return invalid(problem);
      if (
        command.type === "hold" &&
        !(
          Number.isSafeInteger(command.ttlSeconds) &&
          command.ttlSeconds >= HOLD_TTL_SECONDS.min &&
          command.ttlSeconds <= HOLD_TTL_SECONDS.max
        )
      ) {
        return invalid(
          `ttlSeconds must be a whole number from ${HOLD_TTL_SECONDS.min} to ${HOLD_TTL_SECONDS.max}`,
        );
      }
      return null;
    }
    case "confirm-hold":
      if (
        command.paymentReference !== undefined &&
        command.paymentReference !== null &&
        (typeof command.paymentReference !== "string" || !PAYMENT_REFERENCE.test(command.paymentReference))
      ) {
        return invalid("paymentReference is 1 to 200 printable ASCII characters");
      }
      return typeof command.holdId === "string" && eventIdOfHold(command.holdId) !== null
        ? null
        : refusals.holdNotFound();
    case "extend-hold":
      if (!(
        Number.isSafeInteger(command.ttlSeconds) &&
        command.ttlSeconds >= HOLD_TTL_SECONDS.min &&
        command.ttlSeconds <= HOLD_TTL_SECONDS.max
      )) {
        return invalid(
          `ttlSeconds must be a whole number from ${HOLD_TTL_SECONDS.min} to ${HOLD_TTL_SECONDS.max}`,
        );
      }
      return typeof command.holdId === "string" && eventIdOfHold(command.holdId) !== null
        ? null
        : refusals.holdNotFound();
    case "release-hold":
      // Not an id this store could have made: no such hold, as for any unknown id.
      return typeof command.holdId === "string" && eventIdOfHold(command.holdId) !== null
        ? null
        : refusals.holdNotFound();
    case "cancel-order":
      return typeof command.orderId === "string" && eventIdOfOrder(command.orderId) !== null
        ? null
        : refusals.orderNotFound();
    default:
      return invalid("not a command");
  }
}

/** What is wrong with a selection's shape (types, bounds, seat ids), or null. */
function checkSelectionShape(selection: Selection): string | null {
  if (typeof selection !== "object" || selection === null) return "no selection";
  const { quantity, seats } = selection;
  if (!Number.isSafeInteger(quantity) || quantity < 1 || quantity > MAX_TICKETS_PER_REQUEST) {
    return `quantity must be a whole number from 1 to ${MAX_TICKETS_PER_REQUEST}`;
  }
  if (seats === null) {
    const items = selection.items;
    if (items === undefined || items === null) return null;
    if (!Array.isArray(items) || items.length === 0 || items.length > 50)
      return "items must list 1 to 50 items";
    let sum = 0;
    const ids = new Set<string>();
    for (const item of items) {
      if (typeof item !== "object" || item === null) return "an item is { ticketTypeId, quantity }";
      if (typeof item.ticketTypeId !== "string" || !TIER_ID.test(item.ticketTypeId)) {
        return 'ticketTypeId is 1 to 32 lower-case letters, digits, "_" or "-"';
      }
      if (ids.has(item.ticketTypeId)) return `ticket type ${item.ticketTypeId} is listed twice`;
      ids.add(item.ticketTypeId);
      if (!Number.isSafeInteger(item.quantity) || item.quantity < 1)
        return "an item's quantity is at least 1";
      sum += item.quantity;
    }
    return sum === quantity ? null : "quantity must be the sum of the items' quantities";
  }
  if (selection.items !== undefined && selection.items !== null) return "send items or seats, not both";
  if (!Array.isArray(seats) || seats.length === 0 || seats.length > MAX_TICKETS_PER_REQUEST) {
    return `seats must list 1 to ${MAX_TICKETS_PER_REQUEST} seats`;
  }
  if (!seats.every(isSeatId)) return 'a seat id is "<section>-<row>-<seat>", e.g. "A-1-1"';
  if (seats.length !== quantity) return "quantity must be the number of seats";
  if (new Set(seats).size !== seats.length) return "a seat is listed twice";
  return null;
}
