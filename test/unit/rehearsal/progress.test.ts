/** The progress line: redrawn in place with a bar on a terminal; a plain line now and then elsewhere. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ProgressLine } from "../../../src/rehearsal/progress.js";
import type { LiveFigures } from "../../../src/rehearsal/surge.js";

const figures = (over: Partial<LiveFigures> = {}): LiveFigures => ({
  elapsedMs: 5000,
  plannedMs: 10_000,
  arrived: 120,
  turnedAway: 0,
  inFlight: 7,
  requests: 150,
  ticketsSold: 210,
  unavailable: 3,
  cutOff: 1,
  draining: false,
  ...over,
});

describe("progress line", () => {
  it("on a terminal: one line redrawn in place, with a bar and the figures", () => {
    const written: string[] = [];
    const line = new ProgressLine({ isTTY: true, columns: 200, write: (text) => written.push(text) });
    line.update(figures());
    line.update(figures({ elapsedMs: 10_000, draining: true }));
    line.finish();
    assert.equal(written.length, 3);
    // Each redraw starts with a carriage return and the "erase line" escape.
    assert.ok(written.slice(0, 2).every((text) => text.startsWith("\r\x1b[2K")));
    const [first, second] = written.slice(0, 2).map((text) => text.slice("\r\x1b[2K".length));
    assert.match(
      first!,
      /^\[#{12}\.{12}\] {2}50% {2}5s\/10s {2}buyers 120 {2}under way 7 {2}tickets sold 210 {2}503s 3 {2}cut off 1$/,
    );
    assert.match(second!, /^\[#{24}\] 100% {2}last answers/);
    assert.equal(written[2], "\n");
  });

  it("elsewhere: plain lines, at most one per interval, no escape codes", () => {
    const written: string[] = [];
    const line = new ProgressLine({ isTTY: false, write: (text) => written.push(text) }, 60_000);
    for (let i = 0; i < 50; i++) line.update(figures({ arrived: i }));
    line.finish(figures({ turnedAway: 4 }));
    assert.deepEqual(written, [
      "rehearse: 5s/10s  buyers 0  under way 7  tickets sold 210  503s 3  cut off 1\n",
      "rehearse: 5s/10s  buyers 120  under way 7  tickets sold 210  503s 3  cut off 1  turned away 4\n",
    ]);
  });

  it("cuts the line to the terminal's width", () => {
    const written: string[] = [];
    const line = new ProgressLine({ isTTY: true, columns: 40, write: (text) => written.push(text) });
    line.update(figures());
    assert.equal(written[0]!.replace("\r\x1b[2K", "").length, 39);
  });
});
