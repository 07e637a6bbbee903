/**
 * The per-event report an operator reads: sold, held, available and revenue, in all and by ticket type
 * or price zone. Revenue is what the confirmed orders still standing paid: sold × the tier's unit price
 * (prices are fixed at creation; a cancelled order gives its tickets and its revenue back).
 */
import type { EventPlan, EventSettings } from "./event.js";
import type { LineItem } from "./pricing.js";
import type { SaleState } from "./sale-window.js";

export interface TierReport {
  item: LineItem;
  id: string;
  name: string;
  unitPrice: number;
  /** Ticket types: the quota, or null; price zones: the seats the zone prices. */
  quota: number | null;
  sold: number;
  held: number;
  /** What a buyer could still take of it now (within the quota and the event's capacity). */
  available: number;
  /** sold × unitPrice, minor units. */
  revenue: number;
}

export interface EventReport {
  eventId: string;
  name: string;
  state: SaleState;
  currency: string;
  capacity: number;
  sold: number;
  held: number;
  available: number;
  revenue: number;
  tiers: TierReport[];
}

/** The report of an event from its plan, settings, counters and per-tier counters, read at one instant. */
export function reportOf(
  plan: EventPlan,
  settings: EventSettings,
  counters: { sold: number; held: number },
  tierCounters: ReadonlyMap<string, { sold: number; held: number }>,
  state: SaleState,
): EventReport {
  const available = settings.capacity - counters.sold - counters.held;
  const tiers = plan.tiers.map((tier): TierReport => {
    const { sold, held } = tierCounters.get(tier.id) ?? { sold: 0, held: 0 };
    let quota = tier.quota;
    if (plan.kind === "seated") {
      quota = zoneSeats(plan, tier.section, tier.rowFrom, tier.rowTo);
    }
    const left = quota === null ? available : Math.min(available, quota - sold - held);
    return {
      item: plan.kind === "seated" ? "price_zone" : "ticket_type",
      id: tier.id,
      name: tier.name,
      unitPrice: tier.unitPrice,
      quota,
      sold,
      held,
      available: Math.max(0, left),
      revenue: sold * tier.unitPrice,
    };
  });
  return {
    eventId: plan.id,
    name: settings.name,
    state,
    currency: plan.currency,
    capacity: settings.capacity,
    sold: counters.sold,
    held: counters.held,
    available,
    revenue: tiers.reduce((sum, t) => sum + t.revenue, 0),
    tiers,
  };
}

/** Seats a zone prices; for the default zone (no section), the seats no other zone covers. */
function zoneSeats(
  plan: EventPlan,
  section: string | null,
  rowFrom: number | null,
  rowTo: number | null,
): number {
  const sections = plan.sections ?? [];
  if (section === null) {
    const all = sections.reduce((sum, s) => sum + s.rows * s.seatsPerRow, 0);
    const zoned = plan.tiers
      .filter((t) => t.section !== null)
      .reduce((sum, t) => sum + zoneSeats(plan, t.section, t.rowFrom, t.rowTo), 0);
    return all - zoned;
  }
  const s = sections.find((candidate) => candidate.name === section);
  if (!s || rowFrom === null || rowTo === null) return 0;
  return (rowTo - rowFrom + 1) * s.seatsPerRow;
}
