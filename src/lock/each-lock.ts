/**
 * withLocks composed from withLock, one key after another, each tried once (no wait): a provider with
 * no multi-key operation of its own, or a test stand-in, gets the contract's semantics (busy keys are
 * refused, never waited for while the others are held) at the cost of one round trip per key.
 */
import type { WriteGuard } from "../domain/write-guard.js";
import {
  checkLockKeys,
  type LockProvider,
  type ManyLockOptions,
  type ManyLockWork,
} from "./lock-provider.js";

export async function withEachLock<T>(
  provider: Pick<LockProvider, "withLock">,
  keys: readonly string[],
  options: ManyLockOptions,
  work: ManyLockWork<T>,
): Promise<T> {
  checkLockKeys(keys);
  const granted = new Map<string, WriteGuard>();
  const refused = new Map<string, Error>();
  const hold = async (i: number): Promise<T> => {
    const key = keys[i];
    if (key === undefined) return work(granted, refused);
    let ran = false;
    try {
      return await provider.withLock(key, { leaseMs: options.leaseMs, waitMs: 0 }, (guard) => {
        ran = true;
        granted.set(key, guard);
        return hold(i + 1);
      });
    } catch (error) {
      if (ran) throw error;
      refused.set(key, error instanceof Error ? error : new Error(String(error)));
      return hold(i + 1);
    }
  };
  return hold(0);
}
