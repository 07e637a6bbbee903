/**
 * The PostgreSQL store's slow path, run direct and through PgBouncer: when the database refuses a batch
 * for one command's data for a reason the store's own checks do not know (here a trigger an operator
 * added, raising a data exception, SQLSTATE 22023, for one customer), only that command fails; every
 * other command of the batch answers and commits as it would have, nothing of the refused one is kept
 * (not even its idempotency answer, so a retry with its key is a new request), and the store sells on.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command, Order } from "../../src/domain/sale.js";
import { runPipeline } from "../../src/store/postgres/postgres-pipeline.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { TEST_POSTGRES_URL } from "../support/services.js";

const REFUSED = "refused-by-the-database";

/** Where the store connects: PostgreSQL itself, or a PgBouncer in front of it (stopped by `close`). */
export interface SlowPathServer {
  url: string;
  close(): Promise<void>;
}

export function describePostgresSlowPath(
  name: string,
  server: () => Promise<SlowPathServer>,
  options: { skip?: string } = {},
) {
  describe(
    `PostgreSQL store, a batch the database refuses for one command: ${name}`,
    { skip: options.skip },
    () => {
      const schema = freshSchemaName("slow_path");
      let store: PostgresStore | undefined;
      let admin: pg.Client | undefined;
      let through: SlowPathServer | undefined;
      const q = pg.escapeIdentifier(schema);

      before(async () => {
        through = await server();
        store = new PostgresStore({ url: through.url, schema, poolSize: 2, statementTimeoutMs: 5000 });
        await store.init();
        admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await admin.connect();
        await admin.query(`
        CREATE FUNCTION ${q}.refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.customer_id = '${REFUSED}' THEN
            RAISE EXCEPTION 'this customer is refused' USING ERRCODE = '22023';
          END IF;
          RETURN NEW;
        END $$`);
        for (const table of ["orders", "holds"]) {
          await admin.query(
            `CREATE TRIGGER refuse_one BEFORE INSERT ON ${q}.${table} FOR EACH ROW EXECUTE FUNCTION ${q}.refuse_one()`,
          );
        }
      });
      after(async () => {
        await store?.close();
        await through?.close();
        await admin?.end();
        await dropSchema(TEST_POSTGRES_URL, schema);
      });

      const buy = (customerId: string, quantity: number, key: string | null = null): Command => ({
        type: "purchase",
        customerId,
        selection: { quantity, seats: null },
        idempotency: key === null ? null : { key, fingerprint: `fp-${customerId}-${quantity}` },
      });

      it("refuses that command alone; the others commit; a retry with its key is a new request", async () => {
        assert.ok(store && admin);
        const plan = planEvent({ name: "slow", capacity: 20, maxPerCustomer: 8 }, newEventId(), new Date());
        await store.createEvent(plan);
        const now = new Date();
        const outcomes = await store.execute(
          plan.id,
          [
            buy("a", 2),
            buy(REFUSED, 3, "k-refused"),
            buy("b", 1, "k-b"),
            {
              type: "hold",
              customerId: "c",
              selection: { quantity: 2, seats: null },
              ttlSeconds: 60,
              idempotency: null,
            },
            {
              type: "hold",
              customerId: REFUSED,
              selection: { quantity: 1, seats: null },
              ttlSeconds: 60,
              idempotency: null,
            },
            buy("a", 1),
          ],
          null,
          now,
        );
        assert.deepEqual(
          outcomes.map((o) => (o.ok ? "ok" : o.refusal.code)),
          ["ok", "invalid_request", "ok", "ok", "invalid_request", "ok"],
        );
        const event = await store.getEvent(plan.id);
        assert.deepEqual({ sold: event?.sold, held: event?.held }, { sold: 4, held: 2 });
        const order = outcomes[2]?.ok ? (outcomes[2].value as Order) : null;
        assert.deepEqual(await store.getOrder(order?.id ?? ""), order);
        const { rows } = await admin.query(
          `SELECT count(*)::int AS n FROM ${q}.customer_tickets WHERE customer_id = $1`,
          [REFUSED],
        );
        assert.equal(rows[0]?.n, 0, "the refused commands left a customer count behind");

        // The keyed command that committed replays; the refused one stored nothing, so once the database
        // takes it, its retry is a new request.
        const [replay] = await store.execute(plan.id, [buy("b", 1, "k-b")], null, new Date());
        assert.equal(replay?.replayed, true);
        await admin.query(`DROP TRIGGER refuse_one ON ${q}.orders`);
        const [retry] = await store.execute(plan.id, [buy(REFUSED, 3, "k-refused")], null, new Date());
        assert.deepEqual(retry && { ok: retry.ok, replayed: retry.replayed }, { ok: true, replayed: false });
        assert.equal((await store.getEvent(plan.id))?.sold, 7);
      });

      it("sends values only as parameters: a NUL is a data error of its statement, and the connection goes on", async () => {
        assert.ok(through);
        const client = new pg.Client({ connectionString: through.url });
        await client.connect();
        try {
          const hostile = ["'); DROP TABLE x; --", 'q"uote\\', "{a,b}", "é🎟"];
          const [, echo, array] = await runPipeline(client, [
            { text: "BEGIN" },
            { text: "SELECT $1::text AS text, $2::int + 1 AS n", values: [hostile[0], 41] },
            { text: "SELECT $1::text[] AS list", values: [hostile] },
            { text: "COMMIT" },
          ]);
          assert.deepEqual(echo, [{ text: hostile[0], n: 42 }]);
          assert.deepEqual(array, [{ list: hostile }]);
          await assert.rejects(
            runPipeline(client, [
              { text: "BEGIN" },
              { text: "SELECT $1::text", values: ["a\u0000b"] },
              { text: "SELECT 1" },
            ]),
            { code: "22021" },
          );
          await client.query("ROLLBACK");
          const [rows] = await runPipeline(client, [
            { text: "SELECT $1::text AS ok", values: ["still here"] },
          ]);
          assert.deepEqual(rows, [{ ok: "still here" }]);
        } finally {
          await client.end();
        }
      });

      it("sells on afterwards, batch after batch, on the same pool", async () => {
        assert.ok(store);
        const plan = planEvent({ name: "after", capacity: 50, maxPerCustomer: 8 }, newEventId(), new Date());
        await store.createEvent(plan);
        for (let i = 0; i < 6; i++) {
          const outcomes = await store.execute(plan.id, [buy(`x${i}`, 1), buy(`y${i}`, 1)], null, new Date());
          assert.deepEqual(
            outcomes.map((o) => o.ok),
            [true, true],
          );
        }
        assert.equal((await store.getEvent(plan.id))?.sold, 12);
      });
    },
  );
}
