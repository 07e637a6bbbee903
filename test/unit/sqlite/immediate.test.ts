/**
 * immediate() (src/sqlite/immediate.ts) runs work as better-sqlite3's `db.transaction(fn).immediate()`
 * does, with one wrapper per connection: the write lock at BEGIN, commit on return, rollback on throw,
 * a savepoint inside an open transaction, and each connection its own wrapper.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { immediate } from "../../../src/sqlite/immediate.js";
import type { SqliteDatabase } from "../../../src/sqlite/open-wal.js";
import { openWal } from "../../../src/sqlite/open-wal.js";

describe("immediate", () => {
  let dir: string;
  let db: SqliteDatabase;
  let other: SqliteDatabase;
  const open = (name: string) =>
    openWal(join(dir, name), { busyTimeoutMs: 0, synchronous: "NORMAL", setup: () => undefined });
  const values = (on: SqliteDatabase = db) =>
    (on.prepare("SELECT v FROM t ORDER BY v").all() as { v: number }[]).map((row) => row.v);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "boxoffice-immediate-"));
    db = open("a.db");
    db.exec("CREATE TABLE t (v INTEGER NOT NULL)");
    other = open("a.db");
  });
  after(() => {
    db.close();
    other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("commits what the work wrote and returns its result", () => {
    db.exec("DELETE FROM t");
    const result = immediate(db, () => {
      db.prepare("INSERT INTO t (v) VALUES (1)").run();
      return "done";
    });
    assert.equal(result, "done");
    assert.equal(db.inTransaction, false);
    assert.deepEqual(values(other), [1]);
  });

  it("rolls back everything the work wrote when it throws, and rethrows", () => {
    db.exec("DELETE FROM t");
    const failure = new Error("part failed");
    assert.throws(
      () =>
        immediate(db, () => {
          db.prepare("INSERT INTO t (v) VALUES (2)").run();
          throw failure;
        }),
      (error) => error === failure,
    );
    assert.equal(db.inTransaction, false);
    assert.deepEqual(values(), []);
  });

  it("holds the write lock from BEGIN, before the work writes anything", () => {
    immediate(db, () => {
      assert.equal(db.inTransaction, true);
      assert.throws(() => other.prepare("INSERT INTO t (v) VALUES (3)").run(), { code: "SQLITE_BUSY" });
    });
  });

  it("runs as a savepoint inside an open transaction: the inner throw undoes only the inner work", () => {
    db.exec("DELETE FROM t");
    immediate(db, () => {
      db.prepare("INSERT INTO t (v) VALUES (4)").run();
      assert.throws(() =>
        immediate(db, () => {
          db.prepare("INSERT INTO t (v) VALUES (5)").run();
          throw new Error("inner");
        }),
      );
      assert.equal(db.inTransaction, true, "the outer transaction goes on");
      immediate(db, () => db.prepare("INSERT INTO t (v) VALUES (6)").run());
    });
    assert.deepEqual(values(other), [4, 6]);
  });

  it("keeps each connection's transactions on that connection", () => {
    db.exec("DELETE FROM t");
    const b = open("b.db");
    try {
      b.exec("CREATE TABLE t (v INTEGER NOT NULL)");
      immediate(b, () => {
        assert.equal(b.inTransaction, true);
        assert.equal(db.inTransaction, false);
        b.prepare("INSERT INTO t (v) VALUES (7)").run();
      });
      immediate(db, () => db.prepare("INSERT INTO t (v) VALUES (8)").run());
      assert.deepEqual(values(b), [7]);
      assert.deepEqual(values(), [8]);
    } finally {
      b.close();
    }
  });
});
