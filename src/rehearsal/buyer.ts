/**
 * What one buyer does once through the door, as one of the mix's flows:
 *
 * - `order`: buys at once (POST …/orders);
 * - `hold-confirm`: holds tickets, thinks, confirms the hold (a cart checked out);
 * - `hold-release`: holds tickets, thinks, lets them go (a cart abandoned politely);
 * - `order-cancel`: buys, thinks, cancels the order;
 * - `hold-abandon`: holds tickets and walks away: the hold must expire and give its tickets back.
 *
 * Every write that can sell carries an Idempotency-Key, kept across the client's retries. A step only
 * follows a 201: a buyer refused (sold out, seats taken) or never answered stops there. A step on an
 * order or hold carries the access secret its 201 gave, as a buyer's browser would.
 */
import type { BuyerFlow } from "../config/rehearsal-config.js";
import type { AdmissionGate, Buyer } from "./admission.js";
import type { Random } from "./random.js";
import { randomInt } from "./random.js";
import type { FinalAnswer, RehearsalClient, RequestSpec } from "./rehearsal-client.js";
import type { SeatPicker } from "./seat-picker.js";

/** An event on sale in the rehearsal. */
export interface SaleTarget {
  id: string;
  kind: "general" | "seated";
  /** The most tickets one order may take: the event's maxPerOrder and maxPerCustomer, and the run's cap. */
  maxTickets: number;
  /** Seated events only. */
  seats: SeatPicker | null;
  /** The event's door: open, or its waiting room. */
  gate: AdmissionGate;
}

export interface BuyerContext {
  client: RehearsalClient;
  random: Random;
  /** Prefix of every customer id and key of this run, so that runs never share one. */
  runTag: string;
  holdTtlSeconds: number;
  thinkMs: number;
  /** Told when the buyer is through the door (charted as admissions). */
  admitted: (atMs: number) => void;
  sleep: (ms: number) => Promise<void>;
}

interface Created {
  id: string;
  seats: string[] | null;
  /**
   * The headers that open this order or hold to its buyer: `X-Order-Secret` when the answer carried an
   * access secret (a boxoffice with order access answers one with every 201), else none.
   */
  access: Record<string, string>;
}

function created(answer: FinalAnswer): Created | null {
  if (answer.status !== 201 || typeof answer.body !== "object" || answer.body === null) return null;
  const body = answer.body as { id?: unknown; seats?: unknown; secret?: unknown };
  if (typeof body.id !== "string") return null;
  return {
    id: body.id,
    seats: Array.isArray(body.seats) ? (body.seats as string[]) : null,
    access: typeof body.secret === "string" ? { "x-order-secret": body.secret } : {},
  };
}

/** Runs one buyer's flow against `target`; resolves when the buyer is done, never rejects. */
export async function runBuyer(
  context: BuyerContext,
  target: SaleTarget,
  flow: BuyerFlow,
  index: number,
): Promise<void> {
  const buyer: Buyer = { index, customerId: `${context.runTag}-c${index}` };
  // The waiting room's step (admission.ts): join, wait for the turn, carry the pass.
  const admission = await target.gate.admit(buyer, target.id);
  if (admission === null) return;
  context.admitted(Date.now());

  const quantity = randomInt(context.random, 1, target.maxTickets);
  const seats = target.seats?.pick(quantity, context.random) ?? null;
  const selection = seats === null ? { quantity } : { seats };
  const key = (step: string) => `${context.runTag}-${index}-${step}`;
  const send = (spec: RequestSpec, access: Record<string, string> = {}) =>
    context.client.send({ ...spec, headers: { ...admission.headers, ...access } });
  const think = () => context.sleep(context.random() * context.thinkMs);
  const giveBack = (claimed: string[] | null) => {
    if (claimed && target.seats) target.seats.giveBack(claimed);
  };

  const order = () =>
    send({
      kind: "purchase",
      eventId: target.id,
      method: "POST",
      path: `/v1/events/${target.id}/orders`,
      body: { customerId: buyer.customerId, ...selection },
      idempotencyKey: key("order"),
    });
  const hold = () =>
    send({
      kind: "hold",
      eventId: target.id,
      method: "POST",
      path: `/v1/events/${target.id}/holds`,
      body: { customerId: buyer.customerId, ...selection, ttlSeconds: context.holdTtlSeconds },
      idempotencyKey: key("hold"),
    });

  switch (flow) {
    case "order":
      await order();
      return;
    case "order-cancel": {
      const made = created(await order());
      if (!made) return;
      await think();
      const cancelled = await send(
        {
          kind: "cancel",
          eventId: target.id,
          method: "POST",
          path: `/v1/orders/${made.id}/cancel`,
          body: {},
          idempotencyKey: null,
        },
        made.access,
      );
      if (cancelled.status === 200) giveBack(made.seats);
      return;
    }
    case "hold-confirm":
    case "hold-release": {
      const held = created(await hold());
      if (!held) return;
      await think();
      if (flow === "hold-confirm") {
        await send(
          {
            kind: "confirm",
            eventId: target.id,
            method: "POST",
            path: `/v1/holds/${held.id}/confirm`,
            body: {},
            idempotencyKey: key("confirm"),
          },
          held.access,
        );
        return;
      }
      const released = await send(
        {
          kind: "release",
          eventId: target.id,
          method: "DELETE",
          path: `/v1/holds/${held.id}`,
          idempotencyKey: null,
        },
        held.access,
      );
      if (released.status === 204) giveBack(held.seats);
      return;
    }
    case "hold-abandon":
      await hold();
      return;
  }
}
