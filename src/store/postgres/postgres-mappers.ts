/**
 * Rows of the PostgreSQL store's tables, as `pg` returns them, and the domain records made from them.
 * The only place that knows both column names and domain field names.
 */
import type { SaleRules } from "../../domain/decide.js";
import type { Event } from "../../domain/event.js";
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
}

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
}

/** A stored first answer (the `outcome` column is jsonb, parsed by pg). */
export interface IdempotencyRow {
  key: string;
  fingerprint: string;
  outcome: FirstAnswer;
}

export type CustomerRow = { customer_id: string; tickets: number };
export type SeatOwnerRow = { seat_id: string; owner_id: string };

export function toEvent(row: EventRow): Event {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    capacity: row.capacity,
    sold: row.sold,
    held: row.held,
    available: row.capacity - row.sold - row.held,
    maxPerOrder: row.max_per_order,
    maxPerCustomer: row.max_per_customer,
    startsAt: row.starts_at === null ? null : row.starts_at.toISOString(),
    createdAt: row.created_at.toISOString(),
  };
}

export function toSaleRules(row: EventRow): SaleRules {
  return {
    id: row.id,
    kind: row.kind,
    capacity: row.capacity,
    sections: row.sections,
    maxPerOrder: row.max_per_order,
    maxPerCustomer: row.max_per_customer,
  };
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
  };
}

export function toIdempotencyRecord(row: IdempotencyRow): IdempotencyRecord {
  return { key: row.key, fingerprint: row.fingerprint, answer: row.outcome };
}
