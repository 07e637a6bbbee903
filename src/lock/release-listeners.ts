/**
 * The local side of release notifications: per lock key, the waiters of this process to wake when the
 * key is released (LockProvider.onReleased). A provider feeds it whatever tells it of releases (a Redis
 * channel, the releases of this process); a notification is only a hint that a try may now succeed, so
 * a lost one costs a waiter its backoff, never correctness.
 */
export class ReleaseListeners {
  readonly #byKey = new Map<string, Set<() => void>>();

  /** Calls `listener` at each `notify(key)` until the returned function is called. */
  add(key: string, listener: () => void): () => void {
    let listeners = this.#byKey.get(key);
    if (listeners === undefined) {
      listeners = new Set();
      this.#byKey.set(key, listeners);
    }
    // A wrapper per subscription, so that the same function subscribed twice is removed once per call.
    const entry = (): void => listener();
    const set = listeners;
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key);
    };
  }

  /** Wakes the listeners of `key`. */
  notify(key: string): void {
    const listeners = this.#byKey.get(key);
    if (listeners === undefined) return;
    for (const listener of [...listeners]) listener();
  }

  /** Wakes every listener: after notifications may have been missed (a reconnect) or at close. */
  notifyAll(): void {
    for (const key of [...this.#byKey.keys()]) this.notify(key);
  }

  /** How many keys have listeners (tests and bookkeeping checks). */
  get size(): number {
    return this.#byKey.size;
  }
}
