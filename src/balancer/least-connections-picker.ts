/**
 * Chooses the instance for the next request: the one with the fewest in-flight requests relative to its
 * weight. Scores are compared by cross-multiplying integers, never by dividing, so equal loads compare
 * equal exactly. Ties are broken by a rotating start, so equal instances take turns instead of the
 * first one in the list taking every tie.
 */
import type { Backend } from "./backend.js";

export interface PickOptions {
  nowMs: number;
  slowStartMs: number;
  /** An instance with this many in-flight requests is full and is not chosen. */
  maxActive: number;
  /** Instances this request already failed on: chosen only when no other instance has room. */
  exclude?: ReadonlySet<Backend> | undefined;
}

export class LeastConnectionsPicker {
  #cursor = 0;

  /** The chosen instance, or `undefined` when no instance is up with room. */
  pick(backends: readonly Backend[], options: PickOptions): Backend | undefined {
    const count = backends.length;
    if (count === 0) return undefined;
    const start = this.#cursor++ % count;
    if (this.#cursor >= 1_000_000_000) this.#cursor = 0;
    const preferred = this.#best(backends, start, options, options.exclude);
    if (preferred !== undefined || options.exclude === undefined || options.exclude.size === 0)
      return preferred;
    return this.#best(backends, start, options, undefined);
  }

  #best(
    backends: readonly Backend[],
    start: number,
    options: PickOptions,
    exclude: ReadonlySet<Backend> | undefined,
  ): Backend | undefined {
    let best: Backend | undefined;
    let bestLoad = 0;
    let bestWeight = 1;
    const count = backends.length;
    for (let step = 0; step < count; step++) {
      const backend = backends[(start + step) % count]!;
      if (backend.state !== "up" || backend.active >= options.maxActive) continue;
      if (exclude?.has(backend)) continue;
      // The request being placed counts too, so that weights matter even when every instance is idle.
      const load = backend.active + 1;
      const weight = backend.effectiveWeight(options.nowMs, options.slowStartMs);
      // load / weight < bestLoad / bestWeight, without division; strict, so the earliest tie from the
      // rotating start wins.
      if (best === undefined || load * bestWeight < bestLoad * weight) {
        best = backend;
        bestLoad = load;
        bestWeight = weight;
      }
    }
    return best;
  }
}
