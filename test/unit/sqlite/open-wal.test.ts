/**
 * What every boxoffice SQLite connection is opened with (src/sqlite/open-wal.ts): WAL, the busy
 * timeout, the durability asked for, statement journals in memory (a sell batch's savepoints spilled
 * to temporary files in /var/tmp otherwise, ~20 writes per order), and the WAL checkpoint asked for.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { openWal } from "../../../src/sqlite/open-wal.js";

describe("openWal", () => {
  for (const [synchronous, level] of [
    ["FULL", 2],
    ["NORMAL", 1],
  ] as const) {
    it(`opens in WAL mode with synchronous ${synchronous}, the busy timeout and journals in memory`, () => {
      const dir = mkdtempSync(join(tmpdir(), "boxoffice-open-wal-"));
      let setupRan = false;
      const db = openWal(join(dir, "a.db"), {
        busyTimeoutMs: 1234,
        synchronous,
        autocheckpointPages: 4000,
        setup: () => {
          setupRan = true;
        },
      });
      try {
        assert.equal(setupRan, true);
        assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
        assert.equal(db.pragma("synchronous", { simple: true }), level);
        assert.equal(db.pragma("busy_timeout", { simple: true }), 1234);
        assert.equal(db.pragma("temp_store", { simple: true }), 2, "temp_store = MEMORY");
        assert.equal(db.pragma("wal_autocheckpoint", { simple: true }), 4000);
      } finally {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("keeps SQLite's checkpoint of 1,000 pages unless asked", () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-open-wal-"));
    const db = openWal(join(dir, "a.db"), { busyTimeoutMs: 100, synchronous: "NORMAL", setup: () => {} });
    try {
      assert.equal(db.pragma("wal_autocheckpoint", { simple: true }), 1000);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
