/**
 * The one bounded queue of requests waiting for an instance with room. Bounded in length (a full queue
 * refuses at once) and in time (each waiter is told when it waited `queueTimeoutMs`), so memory stays
 * bounded however many clients arrive.
 */

/** A place in the queue, handed back so the waiter can leave early (its client went away). */
export interface QueueTicket<T> {
  readonly item: T;
  readonly enqueuedAtMs: number;
  /** @internal */
  timer: NodeJS.Timeout | undefined;
}

export class AdmissionQueue<T> {
  readonly #maxLength: number;
  readonly #timeoutMs: number;
  // A Set keeps insertion order and deletes in O(1): FIFO order with cheap removal from the middle.
  readonly #waiting = new Set<QueueTicket<T>>();

  constructor(maxLength: number, timeoutMs: number) {
    this.#maxLength = maxLength;
    this.#timeoutMs = timeoutMs;
  }

  get length(): number {
    return this.#waiting.size;
  }

  /**
   * Adds a waiter; `undefined` when the queue is full. `onTimeout` runs (once) if the waiter is still
   * queued after `timeoutMs`; it has then left the queue.
   */
  enqueue(item: T, onTimeout: (item: T) => void): QueueTicket<T> | undefined {
    if (this.#waiting.size >= this.#maxLength) return undefined;
    const ticket: QueueTicket<T> = { item, enqueuedAtMs: Date.now(), timer: undefined };
    ticket.timer = setTimeout(() => {
      ticket.timer = undefined;
      if (this.#waiting.delete(ticket)) onTimeout(item);
    }, this.#timeoutMs);
    this.#waiting.add(ticket);
    return ticket;
  }

  /** Takes the oldest waiter out, or `undefined` when none waits. */
  shift(): T | undefined {
    for (const ticket of this.#waiting) {
      this.#remove(ticket);
      return ticket.item;
    }
    return undefined;
  }

  /** Takes a waiter out early; false when it had already left (served or timed out). */
  cancel(ticket: QueueTicket<T>): boolean {
    return this.#remove(ticket);
  }

  /** Empties the queue, handing every waiter to `each` (at shutdown). */
  drainAll(each: (item: T) => void): void {
    for (const ticket of [...this.#waiting]) {
      this.#remove(ticket);
      each(ticket.item);
    }
  }

  #remove(ticket: QueueTicket<T>): boolean {
    if (ticket.timer !== undefined) clearTimeout(ticket.timer);
    ticket.timer = undefined;
    return this.#waiting.delete(ticket);
  }
}
