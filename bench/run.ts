/**
 * `npm run bench`: runs every benchmark scenario (dist/bench/*.bench.js) one after another, each in its
 * own process so that one cannot warm or slow the next. Each scenario writes its results as Markdown to
 * docs/benchmarks/<name>.md; docs/benchmarks.md summarises them. `npm run bench -- store` runs only the
 * scenarios whose file name contains "store".
 */
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv.slice(2);
const scenarios = readdirSync(here)
  .filter((name) => name.endsWith(".bench.js"))
  .filter((name) => filter.length === 0 || filter.some((part) => name.includes(part)))
  .sort();

let failed = 0;
for (const scenario of scenarios) {
  console.log(`\n=== bench: ${scenario}`);
  const result = spawnSync(process.execPath, [join(here, scenario)], { stdio: "inherit" });
  if (result.status !== 0) {
    failed++;
    console.error(`bench ${scenario} failed with ${result.status ?? result.signal}`);
  }
}
// The picture of the two designs' trade-off is drawn from the locks scenario's table.
if (scenarios.some((name) => name.startsWith("locks"))) {
  spawnSync(process.execPath, [join(here, "tradeoff-chart.js")], { stdio: "inherit" });
}
process.exit(failed === 0 ? 0 : 1);
