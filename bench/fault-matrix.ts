/**
 * `npm run faults`: the whole fault matrix (test/e2e/fault-matrix.test.ts runs a quick subset of it in
 * `npm test`): every stack with every fault that applies to it, the verifier after each run. Prints one
 * line per run and writes the results as Markdown to docs/benchmarks/fault-matrix.md (docs/architecture.md,
 * "The fault matrix", quotes its table). Exits non-zero if a run failed. `--quick` runs the subset,
 * `--only <fault>` the runs of one fault (results to fault-matrix-<fault>.md);
 * `--concurrency <n>` runs n at a time (default 2: a run is mostly waiting for carts to expire).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  QUICK_MATRIX,
  WHOLE_MATRIX,
  describeRun,
  fenceExpected,
  runFault,
  type RunResult,
} from "../test/support/fault-matrix.js";
import { machineNote } from "./machine-note.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const concurrencyAt = args.indexOf("--concurrency");
const concurrency = concurrencyAt >= 0 ? Number(args[concurrencyAt + 1]) : 2;
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const runs = (quick ? QUICK_MATRIX : WHOLE_MATRIX).filter((run) => only === undefined || run.fault === only);

/** Whether a run showed that its fault hit a sale in flight (the test asserts the same). */
function faultHitSales(result: RunResult): boolean {
  const e = result.evidence;
  const common = e.availableAtFault > 0 && e.directInFlightAtFault >= 1 && e.salesAfterFault >= 1;
  switch (result.fault) {
    case "kill":
      return common && e.directUnansweredAtFault >= 1;
    case "pause":
      return (
        common &&
        e.directAnsweredAfterFault >= 1 &&
        e.pause !== null &&
        (fenceExpected(result.stack) ? e.pause.fencedOut : e.pause.fencedOut + e.pause.leaseLost) >= 1 &&
        e.pause.staleCommitted === 0
      );
    case "slow":
      return common && e.directAnsweredDuringFault >= 1;
    default:
      return common && e.unavailable + e.noAnswer >= 1;
  }
}

const results: RunResult[] = [];
const errors: string[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < runs.length) {
      const { stack, fault } = runs[next++]!;
      try {
        const result = await runFault({ stack, fault, log: (line) => console.log(line) });
        results.push(result);
        console.log(describeRun(result));
      } catch (error) {
        errors.push(`${stack} × ${fault}: ${String(error)}`);
        console.error(`${stack} × ${fault}: the run could not be made: ${String(error)}`);
      }
    }
  }),
);

const order = (result: RunResult) =>
  runs.findIndex((run) => run.stack === result.stack && run.fault === result.fault);
results.sort((a, b) => order(a) - order(b));
const rows = results.map((result) => {
  const e = result.evidence;
  const c = result.report.counts;
  const failed = result.report.checks.filter((check) => !check.pass).map((check) => check.name);
  return (
    `| ${result.stack} | ${result.fault} | ${result.report.pass ? "PASS" : `FAIL (${failed.join(", ")})`} | ` +
    `${faultHitSales(result) ? "yes" : "NO"} | ` +
    `${e.pause === null ? "—" : `${e.pause.attempts} / ${e.pause.fencedOut} / ${e.pause.leaseLost} / ${e.pause.staleCommitted}`} | ` +
    `${e.availableAtFault} | ${e.directInFlightAtFault} ` +
    `(${e.directUnansweredAtFault} unanswered, ${e.directAnsweredAfterFault} answered after; ` +
    `${e.directAnsweredDuringFault} taken and answered during) | ` +
    `${e.salesDuringFault} / ${e.salesAfterFault} | ${e.unavailable} / ${e.noAnswer} | ${c.replayed} | ` +
    `${c.ordersConfirmed} / ${c.ordersCancelled} | ${c.holdsExpired} | ${result.records} | ` +
    `${(result.durationMs / 1000).toFixed(0)} s |`
  );
});
const markdown = [
  `# Fault matrix: last results`,
  "",
  `Run on ${new Date().toISOString().slice(0, 10)} with \`npm run faults${quick ? " -- --quick" : ""}` +
    `${only === undefined ? "" : ` -- --only ${only}`}\` ` +
    `(${concurrency} runs at a time). What each column means and what each fault proves: ` +
    `[architecture.md](../architecture.md#the-fault-matrix).`,
  "",
  "| stack | fault | verifier | fault hit sales | pause: stops / writes fenced out / refused for a lost lease / refused but committed | tickets left at the fault | keyed POSTs open on the victim | sales during / after | 503s / no answer | keys replayed by the verifier | orders live / cancelled | carts expired | requests | time |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows,
  ...(errors.length > 0
    ? ["", "Runs that could not be made:", "", ...errors.map((error) => `- ${error}`)]
    : []),
  "",
  machineNote(),
  "",
].join("\n");
const out = join(
  dirname(fileURLToPath(import.meta.url)),
  ...["..", "..", "docs", "benchmarks"],
  only === undefined ? "fault-matrix.md" : `fault-matrix-${only}.md`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, markdown);
console.log(`\nwrote ${out}`);
const failed =
  errors.length + results.filter((result) => !result.report.pass || !faultHitSales(result)).length;
process.exit(failed === 0 ? 0 : 1);
