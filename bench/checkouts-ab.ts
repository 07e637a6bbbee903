/**
 * What the A/B scripts (lock-handoff-ab, postgres-cluster-ab, spread-ab) share: built checkouts measured
 * taking turns (A then B, then B then A on odd rounds, so that neither always runs on the warmer or the
 * busier machine), each with that checkout's own bench/purchase-cluster.js, so the instances and the
 * balancer are the build's own.
 */
import { resolve } from "node:path";
import type { PurchaseCluster } from "./purchase-cluster.js";

/** The PurchaseCluster of the checkout at `root` (built: its dist/ must exist). */
export async function purchaseClusterOf(root: string): Promise<typeof PurchaseCluster> {
  const module = (await import(resolve(root, "dist/bench/purchase-cluster.js"))) as {
    PurchaseCluster: typeof PurchaseCluster;
  };
  return module.PurchaseCluster;
}

/** Runs `measureOne` for every checkout, `rounds` times, taking turns. */
export async function takingTurns(
  checkouts: readonly string[],
  rounds: number,
  measureOne: (root: string) => Promise<void>,
): Promise<void> {
  const roots = checkouts.map((checkout) => resolve(checkout));
  for (let round = 0; round < rounds; round++) {
    for (const root of round % 2 === 0 ? roots : [...roots].reverse()) await measureOne(root);
  }
}
