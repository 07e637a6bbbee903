/**
 * Rows of the PostgreSQL store's tables, as `pg` returns them, and the domain records made from them.
 * The only place that knows both column names and domain field names.
 */
import type { SaleRules } from "../../domain/decide.js";
import type { Event, EventPlan, EventSettings } from "../../domain/event.js";
import { eventOf } from "../../domain/event.js";
import type { Line, PriceTier } from "../../domain/pricing.js";
import { DEFAULT_TIER_ID, legacyLines } from "../../domain/pricing.js";
import type { EventStatus } from "../../domain/sale-window.js";
import { saleStateOf } from "../../domain/sale-window.js";
import type { FirstAnswer, Hold, IdempotencyRecord, Order } from "../../domain/sale.js";

export interface EventRow {
  id: string;
  name: string;
  kind: "general" | "seated";
  capacity: number;
  sold: number;
  held: number;
  sections: { name: string; rows: number; seatsPerRow: number }[] | null;
  max_per_order: number;
  max_per_customer: number;
  starts_at: Date | null;
  created_at: Date;
  description: string | null;
  status: EventStatus;
  sales_start_at: Date | null;
  sales_end_at: Date | null;
  confirm_holds_while_paused: boolean;
  max_hold_lifetime_seconds: number;
  currency: string;
  tiers: PriceTier[] | null;
  /** The database's clock when the row was read (clock_timestamp(), ms since the epoch). */
  clock_ms: number;
}

/** Sold and held tickets of one tier. */
export type TierRow = { tier_id: string; sold: number; held: number };

/** The event row as a write locks it: with whether overdue holds wait for expiry. */
export type LockedEventRow = EventRow & { has_due: boolean };

export interface HoldRow {
  id: string;
  event_id: string;
  customer_id: string;
  quantity: number;
  seats: string[] | null;
  status: "active" | "confirmed" | "released" | "expired";
  expires_at: Date;
  created_at: Date | null;
  lines: Line[] | null;
  total: string | number;
  currency: string;
}

export interface OrderRow {
  id: string;
  event_id: string;
  customer_id: string;
  quantity: number;
  seats: string[] | null;
  status: "confirmed" | "cancelled";
  created_at: Date;
  cancelled_at: Date | null;
  lines: Line[] | null;
  total: string | number;
  currency: string;
  payment_reference: string | null;
}

/** A stored first answer (the `outcome` column is jsonb, parsed by pg). */
export interface IdempotencyRow {
  key: string;
  fingerprint: string;
  outcome: FirstAnswer;
}

export type CustomerRow = { customer_id: string; tickets: number };
export type SeatOwnerRow = { seat_id: string; owner_id: string };

/** The event as created, with its settings as they are now. */
export function toPlan(row: EventRow): EventPlan {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    capacity: row.capacity,
    sections: row.sections,
    maxPerOrder: row.max_per_order,
    maxPerCustomer: row.max_per_customer,
    startsAt: row.starts_at === null ? null : row.starts_at.toISOString(),
    createdAt: row.created_at.toISOString(),
    description: row.description,
    status: row.status,
    salesStartAt: row.sales_start_at === null ? null : row.sales_start_at.toISOString(),
    salesEndAt: row.sales_end_at === null ? null : row.sales_end_at.toISOString(),
    confirmHoldsWhilePaused: row.confirm_holds_while_paused,
    maxHoldLifetimeSeconds: row.max_hold_lifetime_seconds,
    currency: row.currency,
    tiers: row.tiers ?? [legacyTier(row.kind)],
  };
}

/** The one free tier of an event created before prices (002-sale.sql gave it its counters). */
function legacyTier(kind: EventPlan["kind"]): PriceTier {
  return {
    id: DEFAULT_TIER_ID,
    name: kind === "seated" ? "Standard" : "General admission",
    unitPrice: 0,
    quota: null,
    maxPerOrder: null,
    section: null,
    rowFrom: null,
    rowTo: null,
  };
}

export function toEvent(row: EventRow): Event {
  const plan = toPlan(row);
  const settings: EventSettings = plan;
  return eventOf(plan, settings, row, saleStateOf(settings, Number(row.clock_ms)));
}

export function toSaleRules(row: EventRow): SaleRules {
  return toPlan(row);
}

export function tierCountsOf(rows: readonly TierRow[]): Map<string, { sold: number; held: number }> {
  return new Map(rows.map((row) => [row.tier_id, { sold: row.sold, held: row.held }]));
}

export function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    cancelledAt: row.cancelled_at === null ? null : row.cancelled_at.toISOString(),
    lines: row.lines ?? legacyLines(row.quantity, row.seats !== null),
    total: Number(row.total),
    currency: row.currency,
    paymentReference: row.payment_reference,
  };
}

export function toHold(row: HoldRow): Hold {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats,
    status: row.status,
    expiresAt: row.expires_at.toISOString(),
    createdAt: (row.created_at ?? row.expires_at).toISOString(),
    lines: row.lines ?? legacyLines(row.quantity, row.seats !== null),
    total: Number(row.total),
    currency: row.currency,
  };
}

export function toIdempotencyRecord(row: IdempotencyRow): IdempotencyRecord {
  return { key: row.key, fingerprint: row.fingerprint, answer: row.outcome };
}
