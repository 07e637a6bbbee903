/**
 * The long run of the front's differential test against llhttp (test/support/front-differential.ts):
 * `node dist/bench/front-fuzz.js [cases] [seed]` (default a million) reads generated and mutated
 * connections with both parsers and prints one result line; every disagreement is printed with its input
 * (the first few of each kind) and makes the exit code 1.
 */
import fc from "fast-check";
import { connectionBytes, disagreement } from "../test/support/front-differential.js";

const cases = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const batch = 10_000;
const startedAt = performance.now();
const kinds = new Map<string, number>();
let found = 0;
for (let done = 0; done < cases; done += batch) {
  const inputs = fc.sample(connectionBytes, { numRuns: Math.min(batch, cases - done), seed: seed + done });
  for (const input of inputs) {
    const why = disagreement(input);
    if (why === undefined) continue;
    found++;
    const kind = why
      .split("\n")[0]!
      .replace(/request \d+/, "request N")
      .replace(/\(.*\)/, "(…)");
    const seen = kinds.get(kind) ?? 0;
    kinds.set(kind, seen + 1);
    if (seen < 3) console.log(`${JSON.stringify(input.toString("latin1"))}\n  ${why}`);
  }
}
const seconds = (performance.now() - startedAt) / 1000;
console.log(
  `front-fuzz: ${cases} cases, seed ${seed}, ${seconds.toFixed(1)} s, ${found} disagreement(s) with llhttp ${process.versions.llhttp}`,
);
process.exitCode = found === 0 ? 0 : 1;
