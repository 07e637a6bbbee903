/**
 * The report's figures and files: per-second buckets and percentiles from a made-up surge, report.json
 * and records.jsonl read back as written, and a page with no script and nothing fetched.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientRecord } from "../../../src/rehearsal/client-log.js";
import { buildReport, readReport, writeReport } from "../../../src/rehearsal/report.js";
import type { SurgeResult } from "../../../src/rehearsal/surge.js";
import { buildTimeline, buildTotals, percentile } from "../../../src/rehearsal/timeline.js";

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const T0 = Date.parse("2026-11-30T10:00:00Z");

function record(over: Partial<ClientRecord>): ClientRecord {
  return {
    kind: "purchase",
    eventId: "evt_1",
    idempotencyKey: "k",
    method: "POST",
    path: "/v1/events/evt_1/orders",
    body: { customerId: "c", quantity: 2 },
    status: 201,
    response: { id: "ord_1", quantity: 2 },
    startedAtMs: T0,
    endedAtMs: T0 + 10,
    instance: "i-1",
    ...over,
  };
}

function surge(): SurgeResult {
  return {
    runTag: "rhtest",
    seed: 5,
    startedAtMs: T0,
    arrivalsEndedAtMs: T0 + 2500,
    endedAtMs: T0 + 2900,
    events: [
      { id: "evt_1", name: "<b>Night</b>", kind: "general", capacity: 10, created: true, door: "open" },
    ],
    arrivals: [0, 100, 1200, 2100].map((ms, index) => ({
      index,
      scheduledAtMs: T0 + ms,
      startedAtMs: T0 + ms + 5,
    })),
    turnedAwayAtMs: [T0 + 2200],
    admittedAtMs: [T0 + 10, T0 + 110, T0 + 1210, T0 + 2110],
    buyerErrors: [],
    records: [
      // Second 0: a 503, then its retry with the same key answered 201 in second 1.
      record({ idempotencyKey: "a", status: 503, response: { code: "unavailable" }, endedAtMs: T0 + 30 }),
      record({ idempotencyKey: "a", startedAtMs: T0 + 900, endedAtMs: T0 + 1100 }),
      // Second 1: a sold-out answer, and a request cut off twice (never answered).
      record({
        idempotencyKey: "b",
        startedAtMs: T0 + 1200,
        endedAtMs: T0 + 1250,
        status: 409,
        response: { code: "sold_out" },
      }),
      record({
        idempotencyKey: "c",
        startedAtMs: T0 + 1300,
        endedAtMs: T0 + 1400,
        status: null,
        response: null,
        instance: null,
      }),
      record({
        idempotencyKey: "c",
        startedAtMs: T0 + 1500,
        endedAtMs: T0 + 1600,
        status: null,
        response: null,
        instance: null,
      }),
      // Second 2: a confirm sold 3 tickets.
      record({
        kind: "confirm",
        idempotencyKey: "d",
        path: "/v1/holds/h/confirm",
        startedAtMs: T0 + 2200,
        endedAtMs: T0 + 2300,
        response: { id: "ord_2", quantity: 3 },
        instance: "i-2",
      }),
    ],
  };
}

describe("report figures", () => {
  it("nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile([7], 99), 7);
    assert.equal(percentile([], 50), null);
  });

  it("buckets every figure by its second", () => {
    const timeline = buildTimeline(surge());
    assert.deepEqual(timeline.seconds, [0, 1, 2]);
    assert.deepEqual(timeline.arrivals, [2, 1, 1]);
    assert.deepEqual(timeline.admissions, [2, 1, 1]);
    assert.deepEqual(timeline.turnedAway, [0, 0, 1]);
    assert.deepEqual(timeline.orders, [0, 1, 1]);
    assert.deepEqual(timeline.tickets, [0, 2, 3]);
    assert.deepEqual(timeline.unavailable, [1, 0, 0]);
    assert.deepEqual(timeline.cutOff, [0, 2, 0]);
    // Second 0 started two answered attempts (30 ms and 200 ms); second 1 one (50 ms); cut-offs have none.
    assert.deepEqual(timeline.p50Ms, [30, 50, 100]);
    assert.deepEqual(timeline.p99Ms, [200, 50, 100]);
  });

  it("totals: requests, retries and the ones never answered", () => {
    const totals = buildTotals(surge());
    assert.equal(totals.buyers, 4);
    assert.equal(totals.requests, 4);
    assert.equal(totals.retried, 2);
    assert.equal(totals.unanswered, 1);
    assert.equal(totals.ordersConfirmed, 2);
    assert.equal(totals.ticketsSold, 5);
    assert.deepEqual(totals.statuses, { "201": 2, "409": 1, "503": 1, none: 2 });
    assert.deepEqual(totals.codes, { sold_out: 1, unavailable: 1 });
    assert.deepEqual(totals.instances, { "i-1": 3, "i-2": 1 });
    assert.deepEqual(totals.arrivalLatenessMs, { p99: 5, max: 5 });
  });
});

describe("report files", () => {
  it("writes the page, the figures, the records and the charts, and reads them back", async () => {
    const out = mkdtempSync(join(tmpdir(), "rehearsal-report-"));
    dirs.push(out);
    const result = surge();
    const verifier = {
      pass: false,
      checks: [
        { name: "sold-equals-orders", pass: false, detail: "event evt_1: sold 6, but <orders> hold 5" },
        { name: "capacity", pass: true, detail: "1 events within capacity" },
      ],
      counts: { records: 6 },
    };
    const report = buildReport(result, verifier, "http://127.0.0.1:1", { rate: 5 });
    assert.equal(report.verdict, "FAIL");
    const written = await writeReport(out, report, result.records);
    assert.deepEqual(readdirSync(written.dir).sort(), [
      "arrivals.svg",
      "latency.svg",
      "records.jsonl",
      "report.html",
      "report.json",
      "sales.svg",
      "unavailable.svg",
    ]);
    const back = await readReport(written.json);
    assert.deepEqual(back.records, result.records);
    assert.deepEqual(back.report, JSON.parse(JSON.stringify(report)));

    const html = readFileSync(written.html, "utf8");
    assert.match(html, /<span class="verdict fail">FAIL<\/span>/);
    assert.match(
      html,
      /<tr class="fail"><td>FAIL<\/td><th>sold-equals-orders<\/th><td>event evt_1: sold 6, but &lt;orders&gt; hold 5<\/td><\/tr>/,
    );
    assert.ok(html.includes("&lt;b&gt;Night&lt;/b&gt;"), "the event's name is escaped");
    assert.equal((html.match(/<svg /g) ?? []).length, 4);
    assert.doesNotMatch(html, /<script|<link|<img|src=|url\(/);
  });

  it("refuses a file that is not a rehearsal's report", async () => {
    const out = mkdtempSync(join(tmpdir(), "rehearsal-report-"));
    dirs.push(out);
    const file = join(out, "report.json");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(file, JSON.stringify({ tool: "something else" }));
    await assert.rejects(readReport(file), /is not a report.json of boxoffice rehearse/);
  });
});
