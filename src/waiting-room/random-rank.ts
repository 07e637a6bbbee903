/**
 * A pre-queue buyer's rank in the draw: 48 random bits from the OS's CSPRNG (crypto.randomInt), drawn
 * once, when the buyer joins, and never shown to anyone. Ordering independent uniform ranks is a
 * uniformly random permutation (ties, at odds of about n² / 2^49, are broken by identity), so neither
 * arriving first nor joining from a fast bot changes a buyer's chances.
 */
import { randomInt } from "node:crypto";

/** crypto.randomInt takes a range below 2^48. */
const RANK_BOUND = 2 ** 48 - 1;

export function randomRank(): number {
  return randomInt(0, RANK_BOUND);
}
