/**
 * Every refusal a sale can end with, written once: the decider (decide.ts), the shape check (sale.ts),
 * the reference model and the stores all answer with these, so that a refusal reads the same whichever
 * backend gave it.
 */
import type { DomainRefusal } from "./errors.js";
import { isEventId } from "./ids.js";

export const refusals = {
  eventNotFound(eventId: string): DomainRefusal {
    return { code: "event_not_found", detail: isEventId(eventId) ? `no event ${eventId}` : "no such event" };
  },
  holdNotFound(): DomainRefusal {
    return { code: "hold_not_found", detail: "no such hold" };
  },
  orderNotFound(): DomainRefusal {
    return { code: "order_not_found", detail: "no such order" };
  },
  holdExpired(): DomainRefusal {
    return { code: "hold_expired", detail: "the hold expired" };
  },
  holdNotActive(status: string): DomainRefusal {
    return { code: "hold_not_active", detail: `the hold is ${status}` };
  },
  idempotencyKeyReused(): DomainRefusal {
    return { code: "idempotency_key_reused", detail: "this key was used with a different request" };
  },
  noSuchSeats(seats: readonly string[]): DomainRefusal {
    return { code: "invalid_request", detail: `no such seat: ${seats.join(", ")}` };
  },
  seatsUnavailable(seats: string[]): DomainRefusal {
    return { code: "seats_unavailable", detail: `seats held or sold: ${seats.join(", ")}`, seats };
  },
  soldOut(quantity: number): DomainRefusal {
    return { code: "sold_out", detail: `fewer than ${quantity} tickets left` };
  },
  customerLimitReached(maxPerCustomer: number): DomainRefusal {
    return {
      code: "customer_limit_reached",
      detail: `at most ${maxPerCustomer} tickets per customer for this event`,
    };
  },
  /**
   * A database guard refused a write the decider allowed: the constraint, not the view, had the last
   * word (a seat or the last tickets went to a writer the view did not see).
   */
  takenMeanwhile(seated: boolean): DomainRefusal {
    return seated
      ? { code: "seats_unavailable", detail: "a seat was taken", seats: [] }
      : { code: "sold_out", detail: "the tickets were taken" };
  },
  ticketTypeSoldOut(name: string, quantity: number): DomainRefusal {
    return { code: "sold_out", detail: `fewer than ${quantity} tickets of ${name} left` };
  },
  unknownTicketType(id: string): DomainRefusal {
    return { code: "invalid_request", detail: `no ticket type ${id}` };
  },
  sendItems(): DomainRefusal {
    return { code: "invalid_request", detail: "this event has several ticket types: send items" };
  },
  ticketTypeOrderLimit(name: string, maxPerOrder: number): DomainRefusal {
    return { code: "invalid_request", detail: `at most ${maxPerOrder} tickets of ${name} per order` };
  },
  holdExtensionLimit(latest: string): DomainRefusal {
    return {
      code: "hold_extension_limit",
      detail: `the hold cannot live past ${latest} (the event's maxHoldLifetimeSeconds)`,
    };
  },
  capacityBelowTaken(taken: number): DomainRefusal {
    return {
      code: "capacity_below_taken",
      detail: `capacity cannot go below the ${taken} tickets sold or held`,
    };
  },
  /** The database refused the command's data (text it cannot store, a value out of its range). */
  cannotTake(): DomainRefusal {
    return { code: "invalid_request", detail: "the store cannot take this request as it is" };
  },
} as const;
