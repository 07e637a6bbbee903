/**
 * The progress of a surge on stderr: on a terminal, one line redrawn in place with a bar; elsewhere (a
 * CI log, a pipe), a plain line every few seconds, so that a log is not flooded with redraws.
 */
import type { LiveFigures } from "./surge.js";

/** What the progress is written to: process.stderr, or anything like it. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const BAR_WIDTH = 24;

/** The figures as one line of text, without the bar. */
export function describeProgress(figures: LiveFigures): string {
  const seconds = (ms: number) => `${Math.floor(ms / 1000)}s`;
  const phase = figures.draining
    ? "last answers"
    : `${seconds(figures.elapsedMs)}/${seconds(figures.plannedMs)}`;
  return [
    phase,
    `buyers ${figures.arrived}`,
    `under way ${figures.inFlight}`,
    `tickets sold ${figures.ticketsSold}`,
    `503s ${figures.unavailable}`,
    `cut off ${figures.cutOff}`,
    ...(figures.turnedAway > 0 ? [`turned away ${figures.turnedAway}`] : []),
  ].join("  ");
}

export class ProgressLine {
  readonly #stream: ProgressStream;
  readonly #plainEveryMs: number;
  #lastPlainMs = -Infinity;
  #drawn = false;

  /** @param plainEveryMs how often a plain line is written when the stream is not a terminal. */
  constructor(stream: ProgressStream, plainEveryMs = 5000) {
    this.#stream = stream;
    this.#plainEveryMs = plainEveryMs;
  }

  update(figures: LiveFigures): void {
    const text = describeProgress(figures);
    if (this.#stream.isTTY) {
      const done = figures.draining ? 1 : Math.min(1, figures.elapsedMs / Math.max(1, figures.plannedMs));
      const filled = Math.round(done * BAR_WIDTH);
      const bar = `[${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${String(Math.round(done * 100)).padStart(3)}%`;
      const line = `${bar}  ${text}`.slice(0, Math.max(20, (this.#stream.columns || 120) - 1));
      this.#stream.write(`\r\x1b[2K${line}`);
      this.#drawn = true;
      return;
    }
    const now = Date.now();
    if (now - this.#lastPlainMs < this.#plainEveryMs) return;
    this.#lastPlainMs = now;
    this.#stream.write(`rehearse: ${text}\n`);
  }

  /** Ends the redrawn line, so that what follows starts on a line of its own. */
  finish(figures?: LiveFigures): void {
    if (figures && !this.#stream.isTTY) this.#stream.write(`rehearse: ${describeProgress(figures)}\n`);
    if (this.#drawn) this.#stream.write("\n");
    this.#drawn = false;
  }
}
