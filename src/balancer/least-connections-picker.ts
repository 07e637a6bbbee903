/**
 * Chooses the instance for the next request: the one with the fewest in-flight requests relative to its
 * weight. Scores are compared by cross-multiplying integers, never by dividing, so equal loads compare
 * equal exactly. Ties are broken by a rotating start, so equal instances take turns instead of the
 * first one in the list taking every tie.
 *
 * With an affinity key (`--placement event`: the event id of `/v1/events/<id>…`), the instance is the
 * one the key ranks first among those up with room (rendezvous hashing: each instance's score is a hash
 * of the key and its URL, so every balancer with the same instances agrees, and an instance leaving
 * moves only its own keys); when none has room, the least loaded as above.
 */
import type { Backend } from "./backend.js";

export interface PickOptions {
  nowMs: number;
  slowStartMs: number;
  /** An instance with this many in-flight requests is full and is not chosen. */
  maxActive: number;
  /** Instances this request already failed on: chosen only when no other instance has room. */
  exclude?: ReadonlySet<Backend> | undefined;
  /** The request's affinity key (an event id), or undefined for least connections alone. */
  affinity?: string | undefined;
}

/** FNV-1a (32 bits) of `text` continued from `hash`, then a separator ("ab"+"c" and "a"+"bc" differ). */
function fnv1a(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return Math.imul(hash ^ 0x0a, 0x01000193);
}

/**
 * The instance's rendezvous score for the key: FNV-1a of the key and the instance's URL, finished with
 * murmur3's mixer so that URLs differing only in their last characters (the port) still rank in an
 * order that depends on the whole key.
 */
function rendezvousScore(key: string, backend: Backend): number {
  let hash = fnv1a(fnv1a(0x811c9dc5, key), backend.url);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

export class LeastConnectionsPicker {
  #cursor = 0;

  /** The chosen instance, or `undefined` when no instance is up with room. */
  pick(backends: readonly Backend[], options: PickOptions): Backend | undefined {
    const count = backends.length;
    if (count === 0) return undefined;
    if (options.affinity !== undefined) {
      const chosen = this.#byAffinity(backends, options.affinity, options);
      if (chosen !== undefined) return chosen;
    }
    const start = this.#cursor++ % count;
    if (this.#cursor >= 1_000_000_000) this.#cursor = 0;
    const preferred = this.#best(backends, start, options, options.exclude);
    if (preferred !== undefined || options.exclude === undefined || options.exclude.size === 0)
      return preferred;
    return this.#best(backends, start, options, undefined);
  }

  /** The up instance with room (not excluded) that ranks first for the key; undefined when none. */
  #byAffinity(backends: readonly Backend[], key: string, options: PickOptions): Backend | undefined {
    let best: Backend | undefined;
    let bestScore = -1;
    for (const backend of backends) {
      if (backend.state !== "up" || backend.active >= options.maxActive) continue;
      if (options.exclude?.has(backend)) continue;
      const score = rendezvousScore(key, backend);
      // Equal scores (a 1 in 4 billion chance) go to the lower URL, the same in every balancer.
      if (score > bestScore || (score === bestScore && best !== undefined && backend.url < best.url)) {
        best = backend;
        bestScore = score;
      }
    }
    return best;
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
