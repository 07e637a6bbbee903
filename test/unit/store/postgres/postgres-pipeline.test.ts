/**
 * The pipeline's own array literals (flatArrayLiteral) are exactly what pg's prepareValue writes for
 * the arrays they take, and are left to pg for the rest; the database reads them back as sent.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import pg from "pg";
import { flatArrayLiteral, runPipeline } from "../../../../src/store/postgres/postgres-pipeline.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../../../support/services.js";

const skip = await postgresSkip();
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue;

/** Strings rich in what an array literal must escape or quote. */
const awkward = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom('"', "\\", ",", "{", "}", " ", "N", "U", "L", "a", "é", "\n") }),
  fc.constantFrom("NULL", "", '{"a":"b\\"c"}'),
);

describe("flatArrayLiteral", () => {
  it("writes what pg writes for arrays of strings, numbers, booleans and nulls", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(awkward, fc.double(), fc.integer(), fc.boolean(), fc.constant(null))),
        (values) => {
          assert.equal(flatArrayLiteral(values), prepareValue(values));
        },
      ),
    );
  });

  it("leaves dates, nested arrays, buffers and objects to pg", () => {
    for (const value of [new Date(0), [1], Buffer.from("x"), { a: 1 }]) {
      assert.equal(flatArrayLiteral(["a", value]), null);
    }
  });

  it("is read back by the database as sent", { skip }, async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const values = fc.sample(fc.array(fc.oneof(awkward, fc.constant(null))), 50);
      for (const sent of values) {
        const clean = sent.map((value) => (value === null ? null : value.replaceAll("\u0000", "")));
        const [rows] = (await runPipeline(client, [
          { text: "SELECT $1::text[] AS back", values: [clean] },
        ])) as [{ back: (string | null)[] }[]];
        assert.deepEqual(rows[0]?.back, clean);
      }
    } finally {
      await client.end();
    }
  });
});
