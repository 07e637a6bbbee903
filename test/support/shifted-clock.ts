/**
 * Test-only: moves this process's JavaScript clock by BOXOFFICE_TEST_CLOCK_SHIFT_MS (`Date.now()` and
 * `new Date()`), to play an instance whose host clock is wrong. Loaded before the program with
 * `node --import <this file>` (NODE_OPTIONS); nothing in the product knows of it. The database's clock
 * (SQLite's C library, PostgreSQL's server) does not move: that is what the tests show.
 */
const shiftMs = Number(process.env.BOXOFFICE_TEST_CLOCK_SHIFT_MS ?? "0");
if (!Number.isFinite(shiftMs)) throw new Error("BOXOFFICE_TEST_CLOCK_SHIFT_MS must be a number");

const RealDate = Date;

class ShiftedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + shiftMs);
    else super(...(args as [string | number | Date]));
  }

  static override now(): number {
    return RealDate.now() + shiftMs;
  }
}

globalThis.Date = ShiftedDate as DateConstructor;
