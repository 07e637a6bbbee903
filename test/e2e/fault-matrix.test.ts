/**
 * The fault matrix, quick subset (bench/fault-matrix.ts runs the whole of it): each stack once, real
 * `boxoffice server` processes behind a real `boxoffice lb`, buyers purchasing, holding, confirming,
 * releasing and cancelling on a general-admission and a seated event, one fault in the middle of the
 * sale; then the independent verifier (src/rehearsal/verifier.ts) must pass, and each run must show that
 * its fault hit sales in flight. A last run with a planted bug (a store that forgets idempotency keys,
 * wrapped in by a test entry, not by any switch in the product) must fail the verifier.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  PLANTED_BUG_ENTRY,
  QUICK_MATRIX,
  describeRun,
  fenceExpected,
  runFault,
  type RunResult,
} from "../support/fault-matrix.js";
import { postgresServerSkipReason } from "../support/postgres-servers.js";
import { skipUnlessInstalled } from "../support/tools.js";

const skip = postgresServerSkipReason() ?? skipUnlessInstalled("redis-server");

/** What every run must show besides the verifier's pass: the fault hit a sale in flight. */
function assertFaultHitSales(result: RunResult): void {
  const e = result.evidence;
  const what = describeRun(result);
  assert.ok(e.availableAtFault > 0, `tickets were still on sale at the fault: ${what}`);
  assert.ok(e.directInFlightAtFault >= 1, `keyed POSTs were open on the victim at the fault: ${what}`);
  assert.ok(e.salesAfterFault >= 1, `the sale went on after the fault: ${what}`);
  assert.ok((result.report.counts.holdsExpired ?? 0) >= 1, `some carts expired during the run: ${what}`);
  switch (result.fault) {
    case "kill":
      // The victim died with them: no answer from it, so their outcome was in doubt and had to be settled.
      assert.ok(e.directUnansweredAtFault >= 1, `the killed instance took keyed POSTs with it: ${what}`);
      break;
    case "pause":
      // They waited inside the stopped process and were answered only after it resumed; one batch of them
      // was under the lock when it stopped (the fault stops it again until so), and that late write was
      // refused, never committed: by the fence on SQLite, by the fence or the lost lease's signal on
      // PostgreSQL (see pauseHoldingTheLock).
      assert.ok(e.directAnsweredAfterFault >= 1, `the stopped instance answered them on resuming: ${what}`);
      assert.ok(e.pause !== null, what);
      assert.ok(
        fenceExpected(result.stack) ? e.pause.fencedOut >= 1 : e.pause.fencedOut + e.pause.leaseLost >= 1,
        `the victim held the lock when stopped, and its late write was refused: ${what}`,
      );
      assert.equal(e.pause.staleCommitted, 0, `no refused write was committed: ${what}`);
      break;
    case "slow":
      // It was slowed with them open, and went on taking and answering keyed POSTs while slow.
      assert.ok(
        e.directAnsweredDuringFault >= 1,
        `the slow instance answered keyed POSTs while slow: ${what}`,
      );
      break;
    case "redis-restart":
    case "postgres-restart":
      assert.ok(e.unavailable + e.noAnswer >= 1, `buyers felt the outage (503s or no answer): ${what}`);
      break;
  }
}

describe("fault matrix (quick)", { skip, concurrency: 3 }, () => {
  for (const { stack, fault } of QUICK_MATRIX) {
    it(`${stack} × ${fault}: every promise holds, checked by the verifier`, async () => {
      const result = await runFault({ stack, fault, log: (line) => console.log(line) });
      console.log(`# ${describeRun(result)}`);
      assert.ok(result.report.pass, describeRun(result));
      assertFaultHitSales(result);
    });
  }

  it("a planted bug (a store that forgets idempotency keys) makes the verifier fail", async () => {
    const result = await runFault({
      stack: "sqlite-per-event",
      fault: "kill",
      entry: PLANTED_BUG_ENTRY,
      log: (line) => console.log(line),
    });
    console.log(`# planted bug: ${describeRun(result)}`);
    assert.equal(result.report.pass, false, `the verifier missed the planted bug: ${describeRun(result)}`);
    const failed = result.report.checks.filter((check) => !check.pass).map((check) => check.name);
    assert.ok(failed.includes("one-answer-per-key"), `failed: ${failed.join(", ")}`);
  });
});
