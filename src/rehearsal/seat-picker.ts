/**
 * Which seats a buyer of a seated event asks for. Most buyers take the next free block in map order,
 * as a "best available" button would; some pick a random block anywhere, as people choosing from the
 * map do, and collide with others (409 seats_unavailable is an answer the rehearsal wants to see).
 * Seats given back by a release or a cancel are offered again first. The picker only guesses: the
 * boxoffice decides, and two buyers may well be sent for the same seat.
 */
import type { Random } from "./random.js";
import { randomInt } from "./random.js";

export class SeatPicker {
  readonly #seats: readonly string[];
  readonly #returned: string[] = [];
  readonly #randomShare: number;
  #next = 0;

  /**
   * @param seats the seats on sale, in map order (each row's seats side by side).
   * @param randomShare the share of buyers who pick a random block instead of the next free one.
   */
  constructor(seats: readonly string[], randomShare = 0.15) {
    this.#seats = seats;
    this.#randomShare = randomShare;
  }

  get size(): number {
    return this.#seats.length;
  }

  /** `quantity` distinct seats (fewer only when the event has fewer). */
  pick(quantity: number, random: Random): string[] {
    const count = Math.min(quantity, this.#seats.length);
    if (count === 0) return [];
    if (this.#returned.length >= count && random() >= this.#randomShare) {
      return this.#returned.splice(0, count);
    }
    if (this.#next + count <= this.#seats.length && random() >= this.#randomShare) {
      const block = this.#seats.slice(this.#next, this.#next + count);
      this.#next += count;
      return block;
    }
    const start = randomInt(random, 0, this.#seats.length - count);
    return this.#seats.slice(start, start + count);
  }

  /** Seats a release or a cancel gave back: offered again before the rest. */
  giveBack(seats: readonly string[]): void {
    this.#returned.push(...seats);
  }
}
