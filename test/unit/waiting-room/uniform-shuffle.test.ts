/**
 * The statistic the surge test uses to check that the pre-queue is admitted in a uniformly random order
 * (test/support/uniform-shuffle.ts): it must fail on arrival order and on biased permutations, and pass
 * a uniform one. Fixed seeds: every case here is deterministic.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomRank } from "../../../src/waiting-room/random-rank.js";
import { ranksByKey, seededRandom, uniformShuffleVerdict } from "../../support/uniform-shuffle.js";

const N = 5000;

describe("uniform shuffle statistic", () => {
  it("fails arrival order (first come, first served)", () => {
    const verdict = uniformShuffleVerdict(Array.from({ length: N }, (_, i) => i));
    assert.equal(verdict.uniform, false);
    assert.ok(verdict.spearmanZ > 60, `z = ${verdict.spearmanZ}`);
  });

  it("fails reversed arrival order", () => {
    const verdict = uniformShuffleVerdict(Array.from({ length: N }, (_, i) => N - 1 - i));
    assert.equal(verdict.uniform, false);
  });

  it("fails a shuffle that gives early arrivals a head start (a bot that arrives first gains)", () => {
    const random = seededRandom(1);
    // Random keys, minus up to 0.2 for arriving early: still mostly random, but biased.
    const verdict = uniformShuffleVerdict(ranksByKey(N, (i) => random() - 0.2 * (1 - i / N)));
    assert.equal(verdict.uniform, false);
    assert.ok(verdict.spearmanZ > 8, `z = ${verdict.spearmanZ}`);
  });

  it("fails a biased permutation that leaves the rank correlation near zero (only the chi-square sees it)", () => {
    const random = seededRandom(2);
    // Each arrival decile is sent to one fixed admission decile, shuffled inside it; the map is chosen
    // so that the deciles' correlation is about zero (sum of d * target(d) = 202, 202.5 if independent).
    const target = [2, 8, 0, 5, 6, 7, 9, 1, 4, 3];
    const verdict = uniformShuffleVerdict(ranksByKey(N, (i) => target[Math.floor((i * 10) / N)]! + random()));
    assert.ok(Math.abs(verdict.spearmanZ) < 4.8916, `z = ${verdict.spearmanZ}`);
    assert.ok(verdict.chiSquare > verdict.chiSquareCritical * 10, `chi2 = ${verdict.chiSquare}`);
    assert.equal(verdict.uniform, false);
  });

  it("passes uniform shuffles (fixed seeds)", () => {
    for (const seed of [3, 4, 5, 6, 7]) {
      const random = seededRandom(seed);
      const verdict = uniformShuffleVerdict(ranksByKey(N, () => random()));
      assert.equal(verdict.uniform, true, JSON.stringify(verdict));
    }
  });

  it("passes the ranks the waiting room draws (crypto), at significance 1e-6", () => {
    const verdict = uniformShuffleVerdict(ranksByKey(N, () => randomRank()));
    assert.equal(verdict.uniform, true, JSON.stringify(verdict));
  });

  it("refuses what is not a permutation", () => {
    assert.throws(() => uniformShuffleVerdict([0, 0, 1]));
  });
});
