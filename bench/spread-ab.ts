/**
 * `node dist/bench/spread-ab.js <checkoutA> <checkoutB> [--events 50] [--seconds 5] [--rounds 2]
 * [--layout per-event|single] [--placement event]`: issue #18's 50-event row for two builds side by side (A then B, B then A on
 * odd rounds), through the balancer with wrk as bench/purchase-cluster.ts sells, embedded SQLite. Besides
 * the rate and p99 it prints what the shared machine's load hardly moves: the instances' CPU per order,
 * and from both instances' /metrics the ticks per second, the sales per tick and the mean lock wait
 * (from a tick's first ask to its grant).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { purchaseClusterOf, takingTurns } from "./checkouts-ab.js";

const ADMIN_TOKEN = "bench-admin-token-0123456789";
const WARM_UP_SECONDS = 2;

/** The sum of a Prometheus series (e.g. a histogram's `_count` or `_sum`) over every instance. */
async function series(urls: readonly string[], name: string): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const line = (await res.text()).split("\n").find((l) => l.startsWith(name));
    total += Number(line?.split(" ").at(-1) ?? NaN);
  }
  return total;
}

async function measure(
  root: string,
  events: number,
  seconds: number,
  layout: "single" | "per-event",
  lbArgs: string[],
) {
  const Cluster = await purchaseClusterOf(root);
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-spread-ab-"));
  const cluster = new Cluster({ dir, store: "sqlite", lock: "file", layout, lbArgs });
  try {
    await cluster.start();
    const ids = await cluster.createEvents(events);
    cluster.sell(ids, WARM_UP_SECONDS);
    const urls = cluster.processes.filter((p) => p.name !== "lb").map((p) => p.url);
    const names = [
      "boxoffice_sell_batch_size_count",
      "boxoffice_sell_batch_size_sum",
      "boxoffice_lock_wait_seconds_count",
      "boxoffice_lock_wait_seconds_sum",
    ];
    const before = await Promise.all(names.map((name) => series(urls, name)));
    const wrk = cluster.sell(ids, seconds);
    const after = await Promise.all(names.map((name) => series(urls, name)));
    const [ticks, sales, grants, waitedS] = after.map((value, i) => value - (before[i] ?? NaN)) as number[];
    const instancesUs = (wrk.cpuUsPerOrder.s1 ?? NaN) + (wrk.cpuUsPerOrder.s2 ?? NaN);
    return (
      `${wrk.confirmedPerS.toFixed(0)} orders/s, p99 ${wrk.p99Ms.toFixed(0)} ms, non-2xx ${wrk.non2xx}; ` +
      `instances ${instancesUs.toFixed(0)} µs/order (sys ${((wrk.sysUsPerOrder.s1 ?? NaN) + (wrk.sysUsPerOrder.s2 ?? NaN)).toFixed(0)}), ` +
      `lb ${(wrk.cpuUsPerOrder.lb ?? NaN).toFixed(0)}; ${(ticks! / seconds).toFixed(0)} ticks/s, ` +
      `${(sales! / Math.max(1, ticks!)).toFixed(1)} sales/tick, ${(grants! / seconds).toFixed(0)} grants/s, ` +
      `mean lock wait ${((waitedS! * 1000) / Math.max(1, grants!)).toFixed(1)} ms`
    );
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      events: { type: "string", default: "50" },
      seconds: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
      layout: { type: "string", default: "per-event" },
      placement: { type: "string" },
    },
  });
  if (positionals.length < 1) {
    console.error("usage: node dist/bench/spread-ab.js <checkoutA> [<checkoutB>] [--events 50] ...");
    process.exitCode = 2;
    return;
  }
  const layout = values.layout === "single" ? "single" : "per-event";
  const lbArgs = values.placement === undefined ? [] : ["--placement", values.placement];
  await takingTurns(positionals, Number(values.rounds), async (root) => {
    const line = await measure(root, Number(values.events), Number(values.seconds), layout, lbArgs);
    console.log(`${root} ${values.events} events: ${line}`);
  });
}

await main();
