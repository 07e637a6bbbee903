/**
 * No SQLite statement of the project binds its LIMIT or OFFSET as a bare parameter. SQLite's query
 * planner reads such a parameter's value, so every new binding expires the prepared statement and the
 * next step prepares it again: the sell path's check for overdue holds (`LIMIT ?`) was re-prepared in
 * every part of every batch, ~80 µs of CPU per sale over 50 events on one file (docs/benchmarks.md).
 * `LIMIT CAST(? AS INTEGER)` limits the same and keeps the plan.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

const src = fileURLToPath(new URL("../../../../../src", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "postgres" ? [] : sourceFiles(path);
    return name.endsWith(".ts") || name.endsWith(".sql") ? [path] : [];
  });
}

/** A LIMIT or OFFSET (the project writes SQL keywords in capitals) followed directly by one of SQLite's
 * parameter forms (?, ?1, @x, :x, $x), bare or in parentheses. */
const bareLimit = /\b(LIMIT|OFFSET)\s+\(?\s*(\?|[@:$][A-Za-z_])/g;

describe("SQLite statements", () => {
  it("bind no LIMIT or OFFSET as a bare parameter", () => {
    const files = sourceFiles(src);
    assert.ok(
      files.some((file) => file.endsWith("sqlite-sales.ts")),
      `the scan reads ${src}`,
    );
    const found = files.flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(bareLimit)].map((m) => `${file}: ${m[0]}`),
    );
    assert.deepEqual(found, []);
  });

  it("limit the same with the parameter cast as with it bare", () => {
    const db = new Database(":memory:");
    try {
      db.exec("CREATE TABLE t (a INTEGER PRIMARY KEY)");
      const insert = db.prepare("INSERT INTO t (a) VALUES (?)");
      for (let a = 1; a <= 10; a++) insert.run(a);
      const bare = db.prepare<[number, number], { a: number }>("SELECT a FROM t ORDER BY a LIMIT ? OFFSET ?");
      const cast = db.prepare<[number, number], { a: number }>(
        "SELECT a FROM t ORDER BY a LIMIT CAST(? AS INTEGER) OFFSET CAST(? AS INTEGER)",
      );
      for (const [limit, offset] of [
        [0, 0],
        [3, 0],
        [3, 8],
        [-1, 2],
        [100, 0],
        [1, 20],
      ] as const) {
        assert.deepEqual(cast.all(limit, offset), bare.all(limit, offset), `LIMIT ${limit} OFFSET ${offset}`);
      }
    } finally {
      db.close();
    }
  });
});
