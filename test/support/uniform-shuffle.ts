/**
 * Is a permutation a uniform shuffle of arrival order? Two statistics, each tested at significance 1e-6,
 * so that a true uniform shuffle fails with odds of about 2 in a million per run (it cannot flake), while
 * any bias large enough to matter fails by a wide margin:
 *
 * - Spearman's rank correlation between arrival and admission: under a uniform permutation its
 *   z = ρ·√(n − 1) is close to standard normal. Catches arrival order and any head start for the early
 *   (or the late) arrivals.
 * - Pearson's chi-square on the 10×10 table of arrival decile × admission decile (expected n/100 per
 *   cell, 81 degrees of freedom). Catches biases that are not monotone (deciles sent to fixed other
 *   deciles), which leave ρ near 0.
 */

/** Two-sided normal critical value at 1e-6. */
export const SPEARMAN_Z_CRITICAL = 4.8916;
/** Upper 1e-6 point of the normal, for the Wilson–Hilferty approximation of the chi-square quantile. */
const Z_ONE_SIDED = 4.7534;

export interface ShuffleVerdict {
  n: number;
  spearmanZ: number;
  chiSquare: number;
  chiSquareCritical: number;
  /** Both statistics inside their 1e-6 acceptance regions. */
  uniform: boolean;
}

/** The chi-square quantile for `dof` degrees of freedom at 1 − 1e-6 (Wilson–Hilferty, good for dof > 30). */
export function chiSquareCritical(dof: number): number {
  const a = 2 / (9 * dof);
  return dof * (1 - a + Z_ONE_SIDED * Math.sqrt(a)) ** 3;
}

/**
 * `admissionRankOfArrival[i]` is the admission rank (0 = first let in) of the i-th arrival; it must be a
 * permutation of 0…n−1, n a multiple of `bins`.
 */
export function uniformShuffleVerdict(admissionRankOfArrival: readonly number[], bins = 10): ShuffleVerdict {
  const n = admissionRankOfArrival.length;
  if (new Set(admissionRankOfArrival).size !== n || admissionRankOfArrival.some((r) => r < 0 || r >= n)) {
    throw new Error("not a permutation of 0…n−1");
  }
  let sumSquares = 0;
  admissionRankOfArrival.forEach((rank, arrival) => (sumSquares += (rank - arrival) ** 2));
  const rho = 1 - (6 * sumSquares) / (n * (n * n - 1));
  const spearmanZ = rho * Math.sqrt(n - 1);
  const table = Array.from({ length: bins }, () => new Array<number>(bins).fill(0));
  admissionRankOfArrival.forEach((rank, arrival) => {
    table[Math.floor((arrival * bins) / n)]![Math.floor((rank * bins) / n)]! += 1;
  });
  const expected = n / (bins * bins);
  let chiSquare = 0;
  for (const row of table) for (const observed of row) chiSquare += (observed - expected) ** 2 / expected;
  const critical = chiSquareCritical((bins - 1) * (bins - 1));
  return {
    n,
    spearmanZ,
    chiSquare,
    chiSquareCritical: critical,
    uniform: Math.abs(spearmanZ) < SPEARMAN_Z_CRITICAL && chiSquare < critical,
  };
}

/** A seeded PRNG (mulberry32) for the fixed-seed cases of the unit tests: uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The admission ranks given by sorting arrivals on `keyOf(arrival)` (smallest first). */
export function ranksByKey(n: number, keyOf: (arrival: number) => number): number[] {
  const keys = Array.from({ length: n }, (_, i) => keyOf(i));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
  const ranks = new Array<number>(n);
  order.forEach((arrival, rank) => (ranks[arrival] = rank));
  return ranks;
}
