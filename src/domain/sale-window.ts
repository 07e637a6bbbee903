/**
 * An event's sale lifecycle: what admins set (`status`: draft, published, paused, closed) and the sale
 * window (`salesStartAt`, `salesEndAt`), read together with the DATABASE's clock inside the selling
 * transaction, give the state every instance agrees on:
 *
 *   draft ──publish──► scheduled ──(salesStartAt)──► on_sale ──(salesEndAt)──► closed
 *                          │  ▲                        │  ▲
 *                        pause│resume                pause│resume
 *                          ▼  │                        ▼  │
 *                          paused ─────────close─────────► closed (final)
 *
 * An event created without these fields is published with no window: on sale at once, as before.
 */
import type { DomainRefusal } from "./errors.js";

/** What an admin action leaves. `closed` here is final; a window that ended can be moved by an edit. */
export type EventStatus = "draft" | "published" | "paused" | "closed";
/** The state of the sale at an instant: the status and the window, judged by the database's clock. */
export type SaleState = "draft" | "scheduled" | "on_sale" | "paused" | "closed";
export type EventAction = "publish" | "pause" | "resume" | "close";

export const EVENT_ACTIONS: readonly EventAction[] = ["publish", "pause", "resume", "close"];

export interface SaleWindow {
  status: EventStatus;
  /** ISO 8601 UTC, or null: no start (on sale once published) / no end. */
  salesStartAt: string | null;
  salesEndAt: string | null;
}

/** The state of the sale at `clockMs` (the database's clock, in ms since the epoch). */
export function saleStateOf(window: SaleWindow, clockMs: number): SaleState {
  switch (window.status) {
    case "draft":
    case "paused":
    case "closed":
      return window.status;
    case "published":
      if (window.salesStartAt !== null && clockMs < Date.parse(window.salesStartAt)) return "scheduled";
      if (window.salesEndAt !== null && clockMs >= Date.parse(window.salesEndAt)) return "closed";
      return "on_sale";
  }
}

/** Why a new purchase or hold cannot be taken at `clockMs`, or null when the sale is open. */
export function refuseOutsideSale(window: SaleWindow, clockMs: number): DomainRefusal | null {
  switch (saleStateOf(window, clockMs)) {
    case "on_sale":
      return null;
    case "draft":
      return { code: "sale_not_open", detail: "the event is not published yet" };
    case "scheduled":
      return {
        code: "sale_not_open",
        detail: `the sale opens at ${window.salesStartAt ?? ""}`,
        opensAt: window.salesStartAt ?? undefined,
      };
    case "paused":
      return { code: "sale_paused", detail: "the sale is paused; try again later" };
    case "closed":
      return { code: "sale_closed", detail: "the sale is closed" };
  }
}

/**
 * Why an existing hold cannot be confirmed or extended, or null. A hold taken before the window ended
 * may still be paid for until it expires; an admin's close stops it; a pause stops it unless the event
 * lets holds be confirmed while paused (`confirmHoldsWhilePaused`, on by default: payments in flight
 * complete, no new ones start).
 */
export function refuseCheckout(
  window: SaleWindow & { confirmHoldsWhilePaused: boolean },
): DomainRefusal | null {
  if (window.status === "closed") return { code: "sale_closed", detail: "the sale is closed" };
  if (window.status === "paused" && !window.confirmHoldsWhilePaused) {
    return { code: "sale_paused", detail: "the sale is paused; holds cannot be confirmed meanwhile" };
  }
  return null;
}

/**
 * The status an admin action leaves, or a refusal (`invalid_transition`). Repeating an action that is
 * already in effect changes nothing and is not refused.
 */
export function nextStatus(status: EventStatus, action: EventAction): EventStatus | DomainRefusal {
  const refuse = (): DomainRefusal => ({
    code: "invalid_transition",
    detail: `cannot ${action} an event that is ${status}`,
  });
  switch (action) {
    case "publish":
      return status === "draft" || status === "published" ? "published" : refuse();
    case "pause":
      return status === "published" || status === "paused" ? "paused" : refuse();
    case "resume":
      return status === "paused" || status === "published" ? "published" : refuse();
    case "close":
      return "closed";
  }
}
