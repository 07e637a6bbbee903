/**
 * One on-sale surge against a running boxoffice, through its HTTP API only: sets up the events (creates
 * a general admission and a seated one with the admin token, or reads the ones given), lets buyers
 * arrive on the open-loop schedule (arrival-schedule.ts), each running one flow of the mix (buyer.ts)
 * through the event's door (admission.ts), and records every request (rehearsal-client.ts). Resolves
 * when every buyer is done, with what the verifier and the report need.
 */
import type { BuyerFlow, RehearsalConfig } from "../config/rehearsal-config.js";
import { BUYER_FLOWS } from "../config/rehearsal-config.js";
import type { AdmissionGate } from "./admission.js";
import { OPEN_DOOR } from "./admission.js";
import type { Arrival } from "./arrival-schedule.js";
import { arrivalTimesMs, launchArrivals, systemClock } from "./arrival-schedule.js";
import type { SaleTarget } from "./buyer.js";
import { runBuyer } from "./buyer.js";
import type { ClientRecord } from "./client-log.js";
import type { Random } from "./random.js";
import { seededRandom } from "./random.js";
import { RehearsalClient } from "./rehearsal-client.js";
import { SeatPicker } from "./seat-picker.js";
import { hasWaitingRoom, WaitingRoomGate } from "./waiting-room-gate.js";

/** How long a buyer waits at a waiting room's door at most before giving up. */
const DOOR_MAX_WAIT_MS = 10 * 60_000;

/** An event the surge sold. */
export interface SurgeEvent {
  id: string;
  name: string;
  kind: "general" | "seated";
  capacity: number;
  /** True when the rehearsal created it. */
  created: boolean;
  /** The door it had: "open", or the kind of waiting room. */
  door: string;
}

/** What the surge did, for the verifier and the report. Times are epoch milliseconds. */
export interface SurgeResult {
  runTag: string;
  seed: number;
  startedAtMs: number;
  /** When the last buyer arrived (or the arrivals were stopped). */
  arrivalsEndedAtMs: number;
  endedAtMs: number;
  events: SurgeEvent[];
  arrivals: Arrival[];
  /** Arrivals turned away because --max-in-flight buyers were already under way. */
  turnedAwayAtMs: number[];
  /** When each buyer came through the door. */
  admittedAtMs: number[];
  /** Buyers whose flow failed inside the rehearsal itself (a bug, not the system's answer). */
  buyerErrors: string[];
  records: ClientRecord[];
}

/** Figures while the surge runs, for the progress line. */
export interface LiveFigures {
  elapsedMs: number;
  plannedMs: number;
  arrived: number;
  turnedAway: number;
  inFlight: number;
  requests: number;
  /** Tickets in orders answered 201 (orders and confirms). */
  ticketsSold: number;
  unavailable: number;
  cutOff: number;
  /** True once every buyer has arrived and the last ones are being answered. */
  draining: boolean;
}

export interface SurgeHooks {
  /** Called about four times a second. */
  progress?: (figures: LiveFigures) => void;
  /** Aborting stops new arrivals; the buyers under way finish. */
  signal?: AbortSignal;
  /**
   * The door of each event (admission.ts); by default a waiting room's (waiting-room-gate.ts) when the
   * event has one, else open.
   */
  gateFor?: (event: SurgeEvent) => AdmissionGate | Promise<AdmissionGate>;
}

interface EventBody {
  id: string;
  name: string;
  kind: "general" | "seated";
  capacity: number;
  maxPerOrder: number;
  maxPerCustomer: number;
}

interface SeatMapBody {
  sections: { name: string; rows: { row: number; seats: { id: string; status: string }[] }[] }[];
}

export class SetupError extends Error {}

/** Runs the surge `config` describes; throws a SetupError when the events cannot be set up. */
export async function runSurge(config: RehearsalConfig, hooks: SurgeHooks = {}): Promise<SurgeResult> {
  const seed = config.seed === 0 ? Math.floor(Math.random() * 2 ** 31) : config.seed;
  const random = seededRandom(seed);
  const runTag = `rh${seed.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const records: ClientRecord[] = [];
  let ticketsSold = 0;
  let unavailable = 0;
  let cutOff = 0;
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const client = new RehearsalClient({
    url: config.url,
    connections: config.connections,
    requestTimeoutMs: config.requestTimeoutMs,
    retry: { maxAttempts: config.maxAttempts, maxWaitMs: config.maxRetryWaitMs, baseBackoffMs: 100 },
    random,
    adminToken: config.adminToken,
    record: (record) => {
      records.push(record);
      if (record.status === null) cutOff++;
      else if (record.status === 503) unavailable++;
      else if (record.status === 201 && (record.kind === "purchase" || record.kind === "confirm")) {
        ticketsSold += ticketsOf(record.response);
      }
    },
  });
  try {
    const door = client.door.bind(client);
    const roomGate = new WaitingRoomGate({ call: door, sleep, maxWaitMs: DOOR_MAX_WAIT_MS });
    const gateFor =
      hooks.gateFor ??
      (async (event: SurgeEvent) => ((await hasWaitingRoom(door, event.id)) ? roomGate : OPEN_DOOR));
    const { events, targets } = await setUpEvents(config, client, runTag, gateFor).catch((error: unknown) => {
      // No answer at all (a wrong URL, the system down) is a setup failure too, said in one line.
      throw error instanceof SetupError ? error : new SetupError((error as Error).message);
    });
    const result: SurgeResult = {
      runTag,
      seed,
      startedAtMs: Date.now(),
      arrivalsEndedAtMs: 0,
      endedAtMs: 0,
      events,
      arrivals: [],
      turnedAwayAtMs: [],
      admittedAtMs: [],
      buyerErrors: [],
      records,
    };
    const plannedMs = config.durationSeconds * 1000;
    let inFlight = 0;
    let draining = false;
    const figures = (): LiveFigures => ({
      elapsedMs: Date.now() - result.startedAtMs,
      plannedMs,
      arrived: result.arrivals.length,
      turnedAway: result.turnedAwayAtMs.length,
      inFlight,
      requests: records.length,
      ticketsSold,
      unavailable,
      cutOff,
      draining,
    });
    const ticker = hooks.progress ? setInterval(() => hooks.progress?.(figures()), 250) : null;
    const context = {
      client,
      random,
      runTag,
      holdTtlSeconds: config.holdTtlSeconds,
      thinkMs: config.thinkMs,
      admitted: (atMs: number) => result.admittedAtMs.push(atMs),
      sleep,
    };
    const flows = weightedChoice(BUYER_FLOWS, (flow) => config.mix[flow]);
    try {
      const buyers = await launchArrivals(
        arrivalTimesMs(
          {
            ratePerSecond: config.rate,
            rampSeconds: config.rampSeconds,
            durationSeconds: config.durationSeconds,
            maxBuyers: config.buyers,
            kind: config.arrivals,
          },
          random,
        ),
        result.startedAtMs,
        async (arrival) => {
          if (inFlight >= config.maxInFlight) {
            result.turnedAwayAtMs.push(arrival.startedAtMs);
            return;
          }
          result.arrivals.push(arrival);
          const target = targets[Math.floor(random() * targets.length)] as SaleTarget;
          const flow: BuyerFlow = flows(random);
          inFlight++;
          try {
            await runBuyer(context, target, flow, arrival.index);
          } catch (error) {
            result.buyerErrors.push(`buyer ${arrival.index} (${flow}): ${(error as Error).message}`);
          } finally {
            inFlight--;
          }
        },
        systemClock,
        hooks.signal,
      );
      result.arrivalsEndedAtMs = Date.now();
      draining = true;
      await Promise.all(buyers);
      result.endedAtMs = Date.now();
    } finally {
      if (ticker) clearInterval(ticker);
    }
    hooks.progress?.(figures());
    return result;
  } finally {
    await client.close();
  }
}

async function setUpEvents(
  config: RehearsalConfig,
  client: RehearsalClient,
  runTag: string,
  gateFor: (event: SurgeEvent) => AdmissionGate | Promise<AdmissionGate>,
): Promise<{ events: SurgeEvent[]; targets: SaleTarget[] }> {
  const bodies: { body: EventBody; created: boolean }[] = [];
  if (config.events.length > 0) {
    for (const id of config.events) {
      const answer = await client.admin<EventBody>("GET", `/v1/events/${encodeURIComponent(id)}`);
      if (answer.status !== 200)
        throw new SetupError(`event ${id}: ${answer.status} ${describe(answer.body)}`);
      bodies.push({ body: answer.body, created: false });
    }
  } else {
    if (!config.adminToken) {
      throw new SetupError(
        "creating events needs the admin token in BOXOFFICE_ADMIN_TOKEN (or name existing events with --event)",
      );
    }
    const stamp = new Date().toISOString().slice(0, 19);
    for (const kind of config.create) {
      const request =
        kind === "general"
          ? { name: `Rehearsal ${stamp} general (${runTag})`, capacity: config.capacity }
          : {
              name: `Rehearsal ${stamp} seated (${runTag})`,
              seating: {
                sections: Array.from({ length: config.seating.sections }, (_, i) => ({
                  name: String.fromCharCode(65 + i),
                  rows: config.seating.rows,
                  seatsPerRow: config.seating.seatsPerRow,
                })),
              },
            };
      const answer = await client.admin<EventBody>("POST", "/v1/events", {
        ...request,
        maxPerOrder: 8,
        maxPerCustomer: 8,
      });
      if (answer.status !== 201) {
        throw new SetupError(`creating the ${kind} event: ${answer.status} ${describe(answer.body)}`);
      }
      bodies.push({ body: answer.body, created: true });
    }
  }
  const events: SurgeEvent[] = [];
  const targets: SaleTarget[] = [];
  for (const { body, created } of bodies) {
    const event: SurgeEvent = {
      id: body.id,
      name: body.name,
      kind: body.kind,
      capacity: body.capacity,
      created,
      door: "open",
    };
    const gate = await gateFor(event);
    event.door = gate.name;
    let seats: SeatPicker | null = null;
    if (body.kind === "seated") {
      const map = await client.admin<SeatMapBody>("GET", `/v1/events/${body.id}/seats`);
      if (map.status !== 200)
        throw new SetupError(`seat map of ${body.id}: ${map.status} ${describe(map.body)}`);
      const free = map.body.sections.flatMap((section) =>
        section.rows.flatMap((row) =>
          row.seats.filter((seat) => seat.status === "available").map((s) => s.id),
        ),
      );
      seats = new SeatPicker(free);
    }
    events.push(event);
    targets.push({
      id: body.id,
      kind: body.kind,
      maxTickets: Math.max(1, Math.min(config.maxTickets, body.maxPerOrder, body.maxPerCustomer)),
      seats,
      gate,
    });
  }
  return { events, targets };
}

/** Picks among `choices` with the given weights. */
export function weightedChoice<T>(
  choices: readonly T[],
  weight: (choice: T) => number,
): (random: Random) => T {
  const weights = choices.map(weight);
  const total = weights.reduce((sum, w) => sum + w, 0);
  return (random) => {
    let left = random() * total;
    for (let i = 0; i < choices.length; i++) {
      left -= weights[i] ?? 0;
      if (left < 0 && (weights[i] ?? 0) > 0) return choices[i] as T;
    }
    // Rounding left a sliver: the last choice with any weight.
    for (let i = choices.length - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return choices[i] as T;
    throw new Error("no choice has a weight");
  };
}

/** The tickets of an Order answer (its quantity), 0 for anything else. */
export function ticketsOf(body: unknown): number {
  if (typeof body !== "object" || body === null) return 0;
  const quantity = (body as { quantity?: unknown }).quantity;
  return typeof quantity === "number" ? quantity : 0;
}

function describe(body: unknown): string {
  if (typeof body === "object" && body !== null && "detail" in body) {
    return String((body as { detail: unknown }).detail);
  }
  return typeof body === "string" ? body.slice(0, 200) : (JSON.stringify(body)?.slice(0, 200) ?? "");
}
