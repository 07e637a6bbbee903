/**
 * Runs admission passes from one instance, every `intervalMs` (with jitter, never two at once). The
 * timer only says when to look: what a pass may admit is decided in the store, in a transaction on the
 * room's row, so any number of instances running passes let buyers in no faster than the rate
 * (store/waiting-room-store.ts).
 */
import type { Admission, WaitingRoomStore } from "../store/waiting-room-store.js";

export interface AdmissionTickerOptions {
  waitingRoom: WaitingRoomStore;
  intervalMs: number;
  /** How far ahead a pass gives admission times: a pass that runs late by less than this loses no slot. */
  lookAheadMs: number;
  onAdmitted?: (admissions: Admission[]) => void;
  onError?: (error: unknown) => void;
}

/** The default look-ahead: passes of every instance may stall this long without slowing admission. */
export const ADMISSION_LOOK_AHEAD_MS = 3000;
export const ADMISSION_INTERVAL_MS = 250;

export class AdmissionTicker {
  readonly #options: AdmissionTickerOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(options: AdmissionTickerOptions) {
    this.#options = options;
  }

  init(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const jitterMs = Math.random() * this.#options.intervalMs * 0.5;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#running = this.passNow().finally(() => {
          this.#running = null;
          this.#schedule();
        });
      },
      this.#options.intervalMs * 0.75 + jitterMs,
    );
    this.#timer.unref();
  }

  /** One pass now; errors go to onError (a store that is down only delays admission). */
  async passNow(): Promise<void> {
    try {
      const admissions = await this.#options.waitingRoom.admit(this.#options.lookAheadMs);
      if (admissions.length > 0) this.#options.onAdmitted?.(admissions);
    } catch (error) {
      this.#options.onError?.(error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
