/**
 * The surge, second by second: arrivals, admissions, tickets sold, 503s, cut-off requests and the
 * latency percentiles of the attempts that started in each second; and the whole run's totals. These
 * are the raw figures of report.json and the charts of report.html.
 */
import type { ClientRecord } from "./client-log.js";
import type { SurgeResult } from "./surge.js";
import { ticketsOf } from "./surge.js";

export interface Timeline {
  /** Second i covers [startedAtMs + i·1000, startedAtMs + (i+1)·1000). */
  seconds: number[];
  arrivals: number[];
  admissions: number[];
  turnedAway: number[];
  /** Orders answered 201 (direct orders and confirmed holds), by the second the answer came. */
  orders: number[];
  tickets: number[];
  /** Attempts answered 503, by the second they started. */
  unavailable: number[];
  /** Attempts that got no answer (refused, reset, timed out). */
  cutOff: number[];
  /** Latency percentiles (ms) of the attempts answered, by the second they started; null when none. */
  p50Ms: (number | null)[];
  p95Ms: (number | null)[];
  p99Ms: (number | null)[];
}

export interface Totals {
  buyers: number;
  turnedAway: number;
  admitted: number;
  requests: number;
  /** Requests whose attempts included a retry. */
  retried: number;
  /** Requests that never got an answer, all attempts spent: the keys the verifier must settle. */
  unanswered: number;
  ordersConfirmed: number;
  ticketsSold: number;
  /** Attempts by the status they got ("none" for a cut-off). */
  statuses: Record<string, number>;
  /** Answers by the problem code they carried (sold_out, seats_unavailable, …). */
  codes: Record<string, number>;
  /** Attempts by the instance that answered (X-Served-By). */
  instances: Record<string, number>;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
  /** How late the launcher let buyers in, past their due time: p99 and most, in ms. */
  arrivalLatenessMs: { p99: number | null; max: number | null };
  buyerErrors: number;
}

/** The value at or below which `percent` of the sorted values lie (nearest rank); null for none. */
export function percentile(sorted: readonly number[], percent: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((percent / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

export function buildTimeline(result: SurgeResult): Timeline {
  const start = result.startedAtMs;
  // A loop, not Math.max(...records): a big run has more records than a call takes arguments.
  let lastMs = Math.max(result.endedAtMs, result.arrivalsEndedAtMs);
  for (const record of result.records) lastMs = Math.max(lastMs, record.endedAtMs);
  const length = Math.max(1, Math.ceil((lastMs - start) / 1000));
  const zeros = () => new Array<number>(length).fill(0);
  const slot = (atMs: number) => Math.min(length - 1, Math.max(0, Math.floor((atMs - start) / 1000)));
  const timeline: Timeline = {
    seconds: Array.from({ length }, (_, i) => i),
    arrivals: zeros(),
    admissions: zeros(),
    turnedAway: zeros(),
    orders: zeros(),
    tickets: zeros(),
    unavailable: zeros(),
    cutOff: zeros(),
    p50Ms: [],
    p95Ms: [],
    p99Ms: [],
  };
  const latencies: number[][] = Array.from({ length }, () => []);
  for (const arrival of result.arrivals) timeline.arrivals[slot(arrival.startedAtMs)]! += 1;
  for (const atMs of result.admittedAtMs) timeline.admissions[slot(atMs)]! += 1;
  for (const atMs of result.turnedAwayAtMs) timeline.turnedAway[slot(atMs)]! += 1;
  for (const record of result.records) {
    const started = slot(record.startedAtMs);
    if (record.status === null) {
      timeline.cutOff[started]! += 1;
      continue;
    }
    latencies[started]!.push(record.endedAtMs - record.startedAtMs);
    if (record.status === 503) timeline.unavailable[started]! += 1;
    if (isSale(record)) {
      timeline.orders[slot(record.endedAtMs)]! += 1;
      timeline.tickets[slot(record.endedAtMs)]! += ticketsOf(record.response);
    }
  }
  for (const values of latencies) {
    values.sort((a, b) => a - b);
    timeline.p50Ms.push(percentile(values, 50));
    timeline.p95Ms.push(percentile(values, 95));
    timeline.p99Ms.push(percentile(values, 99));
  }
  return timeline;
}

function isSale(record: ClientRecord): boolean {
  return record.status === 201 && (record.kind === "purchase" || record.kind === "confirm");
}

export function buildTotals(result: SurgeResult): Totals {
  const statuses: Record<string, number> = {};
  const codes: Record<string, number> = {};
  const instances: Record<string, number> = {};
  const add = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);
  // A request is one (kind, path, key) with its attempts in order; requests without a key are told
  // apart by their start, which is enough to count retries of a release or a cancel.
  const requests = new Map<string, ClientRecord[]>();
  const latencies: number[] = [];
  let ordersConfirmed = 0;
  let ticketsSold = 0;
  for (const record of result.records) {
    add(statuses, record.status === null ? "none" : String(record.status));
    if (record.instance !== null) add(instances, record.instance);
    const code = problemCode(record.response);
    if (code !== null) add(codes, code);
    if (record.status !== null) latencies.push(record.endedAtMs - record.startedAtMs);
    if (isSale(record)) {
      ordersConfirmed++;
      ticketsSold += ticketsOf(record.response);
    }
    const id = `${record.kind} ${record.method} ${record.path} ${record.idempotencyKey ?? ""}`;
    const attempts = requests.get(id) ?? [];
    attempts.push(record);
    requests.set(id, attempts);
  }
  let retried = 0;
  let unanswered = 0;
  for (const attempts of requests.values()) {
    if (attempts.length > 1) retried++;
    const last = attempts.at(-1);
    if (last && (last.status === null || last.status === 503 || last.status === 502 || last.status === 504)) {
      unanswered++;
    }
  }
  latencies.sort((a, b) => a - b);
  const lateness = result.arrivals.map((a) => a.startedAtMs - a.scheduledAtMs).sort((a, b) => a - b);
  return {
    buyers: result.arrivals.length,
    turnedAway: result.turnedAwayAtMs.length,
    admitted: result.admittedAtMs.length,
    requests: requests.size,
    retried,
    unanswered,
    ordersConfirmed,
    ticketsSold,
    statuses,
    codes,
    instances,
    latencyMs: {
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? null,
    },
    arrivalLatenessMs: { p99: round(percentile(lateness, 99)), max: round(lateness.at(-1) ?? null) },
    buyerErrors: result.buyerErrors.length,
  };
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}

function problemCode(body: unknown): string | null {
  if (typeof body !== "object" || body === null || !("code" in body)) return null;
  const code = (body as { code: unknown }).code;
  return typeof code === "string" ? code : null;
}
