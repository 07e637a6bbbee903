/**
 * What the PostgreSQL store promises beyond the shared contract: bounded waits that end in a retryable
 * error (stuck statement, exhausted pool, busy advisory lock, unreachable server), migrations that many
 * instances can apply at once, and constraints that hold even against writes that skip the store.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { planEvent, type EventPlan } from "../../../../src/domain/event.js";
import { newEventId } from "../../../../src/domain/ids.js";
import type { Command } from "../../../../src/domain/sale.js";
import { advisoryKeyFor } from "../../../../src/postgres/advisory-key.js";
import { PostgresStore } from "../../../../src/store/postgres/postgres-store.js";
import { sqlStateOf } from "../../../../src/store/postgres/postgres-errors.js";
import {
  createTestPostgresStore,
  dropSchema,
  freshSchemaName,
  lockEventRow,
  type TestPostgresStore,
} from "../../../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../../../support/services.js";

const buy = (customerId: string, quantity = 1): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity, seats: null },
  idempotency: null,
});

/** A direct connection, to hold locks and break rules from outside the store. */
async function outsider(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  return client;
}

describe("postgres store", { skip: await postgresSkip() }, () => {
  const fixtures: TestPostgresStore[] = [];
  const clients: pg.Client[] = [];
  after(async () => {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await Promise.all(fixtures.map((fixture) => fixture.cleanup()));
  });

  async function open(what: string, config: Parameters<typeof createTestPostgresStore>[1] = {}) {
    const fixture = await createTestPostgresStore(what, config);
    fixtures.push(fixture);
    return fixture;
  }
  async function connectOutsider(): Promise<pg.Client> {
    const client = await outsider();
    clients.push(client);
    return client;
  }
  async function newEvent(store: PostgresStore, capacity = 10): Promise<EventPlan> {
    const plan = planEvent({ name: "PG", capacity, maxPerCustomer: 100 }, newEventId(), new Date());
    await store.createEvent(plan);
    return plan;
  }

  describe("bounded waits", () => {
    let fixture: TestPostgresStore;
    before(async () => {
      fixture = await open("timeouts", { statementTimeoutMs: 300, poolSize: 1, connectTimeoutMs: 300 });
    });

    it(
      "a statement stuck behind a lock ends at the statement timeout with STORE_UNAVAILABLE",
      { timeout: 15_000 },
      async () => {
        const plan = await newEvent(fixture.store);
        const holder = await lockEventRow(TEST_POSTGRES_URL, fixture.schema, plan.id);
        try {
          await assert.rejects(() => fixture.store.execute(plan.id, [buy("c")], null, new Date()), {
            code: "STORE_UNAVAILABLE",
            retryable: true,
          });
        } finally {
          await holder.release();
        }
        // The connection that timed out is healthy again: the next sale goes through.
        const [outcome] = await fixture.store.execute(plan.id, [buy("c")], null, new Date());
        assert.equal(outcome?.ok, true);
        assert.equal((await fixture.store.getEvent(plan.id))?.sold, 1);
      },
    );

    it(
      "an exhausted pool makes the next caller wait a bounded time, then STORE_UNAVAILABLE",
      { timeout: 15_000 },
      async () => {
        const plan = await newEvent(fixture.store);
        const holder = await lockEventRow(TEST_POSTGRES_URL, fixture.schema, plan.id);
        // The pool's only connection is now stuck in this sale until the statement timeout.
        const stuck = fixture.store.execute(plan.id, [buy("c")], null, new Date());
        const stuckSettled = stuck.then(
          () => "ok",
          (error: { code?: string }) => error.code,
        );
        try {
          await assert.rejects(() => fixture.store.getEvent(plan.id), {
            code: "STORE_UNAVAILABLE",
            retryable: true,
          });
        } finally {
          await holder.release();
        }
        assert.ok(["ok", "STORE_UNAVAILABLE"].includes((await stuckSettled) ?? ""));
        assert.ok(await fixture.store.getEvent(plan.id));
      },
    );
  });

  describe("advisory transaction lock (WriteGuard.transactionLock)", () => {
    it(
      "waits at most waitMs for a busy lock, then LOCK_BUSY; takes it once free",
      { timeout: 15_000 },
      async () => {
        const { store } = await open("advisory");
        const plan = await newEvent(store);
        const lockKey = `event:${plan.id}`;
        const guard = {
          lockKey,
          fence: null,
          signal: new AbortController().signal,
          transactionLock: { waitMs: 200 },
        };
        const holder = await connectOutsider();
        await holder.query("BEGIN");
        await holder.query("SELECT pg_advisory_xact_lock($1)", [advisoryKeyFor(lockKey).toString()]);
        try {
          await assert.rejects(() => store.execute(plan.id, [buy("c")], guard, new Date()), {
            code: "LOCK_BUSY",
            retryable: true,
          });
          assert.equal((await store.getEvent(plan.id))?.sold, 0);
          // Another key is not blocked by this one.
          const other = await newEvent(store);
          const [outcome] = await store.execute(
            other.id,
            [buy("c")],
            { ...guard, lockKey: `event:${other.id}` },
            new Date(),
          );
          assert.equal(outcome?.ok, true);
        } finally {
          await holder.query("COMMIT");
        }
        const [outcome] = await store.execute(plan.id, [buy("c")], guard, new Date());
        assert.equal(outcome?.ok, true);
        // The lock went with the commit: the outsider can take it at once.
        await holder.query("SET lock_timeout = 200");
        await holder.query("BEGIN");
        await holder.query("SELECT pg_advisory_xact_lock($1)", [advisoryKeyFor(lockKey).toString()]);
        await holder.query("COMMIT");
      },
    );
  });

  describe("connections", () => {
    it(
      "an unreachable server fails init and ping with STORE_UNAVAILABLE, quickly",
      { timeout: 15_000 },
      async () => {
        const store = new PostgresStore({
          url: "postgres://postgres@127.0.0.1:1/test",
          poolSize: 1,
          statementTimeoutMs: 500,
          connectTimeoutMs: 500,
        });
        try {
          await assert.rejects(() => store.init(), { code: "STORE_UNAVAILABLE", retryable: true });
          await assert.rejects(() => store.ping(), { code: "STORE_UNAVAILABLE" });
        } finally {
          await store.close();
          await store.close();
        }
      },
    );

    it("reads the schema from the URL's ?schema= and answers ping", async () => {
      const schema = freshSchemaName("urlschema");
      const store = new PostgresStore({
        url: `${TEST_POSTGRES_URL}?schema=${schema}`,
        poolSize: 1,
        statementTimeoutMs: 1000,
      });
      try {
        await store.init();
        await store.ping();
        const plan = await newEvent(store);
        const client = await connectOutsider();
        const { rows } = await client.query(`SELECT id FROM ${pg.escapeIdentifier(schema)}.events`);
        assert.deepEqual(rows, [{ id: plan.id }]);
      } finally {
        await store.close();
        await dropSchema(TEST_POSTGRES_URL, schema);
      }
    });
  });

  describe("migrations", () => {
    it("apply once when several instances start at the same time", async () => {
      const schema = freshSchemaName("migrate");
      const stores = [0, 1, 2, 3].map(
        () => new PostgresStore({ url: TEST_POSTGRES_URL, schema, poolSize: 1, statementTimeoutMs: 5000 }),
      );
      try {
        await Promise.all(stores.map((store) => store.init()));
        const client = await connectOutsider();
        const { rows } = await client.query(
          `SELECT version, count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.schema_migrations GROUP BY version ORDER BY version`,
        );
        assert.ok(rows.length >= 1);
        assert.ok(rows.every((row: { n: number }) => row.n === 1));
        // A restart finds nothing left to do and the data intact.
        const plan = await newEvent(stores[0] as PostgresStore);
        await stores[1]?.close();
        const again = new PostgresStore({
          url: TEST_POSTGRES_URL,
          schema,
          poolSize: 1,
          statementTimeoutMs: 5000,
        });
        stores.push(again);
        await again.init();
        assert.equal((await again.getEvent(plan.id))?.capacity, 10);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
        await dropSchema(TEST_POSTGRES_URL, schema);
      }
    });
  });

  describe("constraints hold against writes that skip the store", () => {
    let fixture: TestPostgresStore;
    let client: pg.Client;
    let plan: EventPlan;
    before(async () => {
      fixture = await open("constraints");
      client = await connectOutsider();
      await client.query(`SET search_path TO ${pg.escapeIdentifier(fixture.schema)}`);
      plan = await newEvent(fixture.store, 5);
    });

    async function sqlStateOfQuery(text: string, values: unknown[]): Promise<string | null> {
      try {
        await client.query(text, values);
        return null;
      } catch (error) {
        return sqlStateOf(error);
      }
    }

    it("sold + held <= capacity, neither negative (CHECK)", async () => {
      assert.equal(await sqlStateOfQuery("UPDATE events SET sold = 6 WHERE id = $1", [plan.id]), "23514");
      assert.equal(
        await sqlStateOfQuery("UPDATE events SET sold = 3, held = 3 WHERE id = $1", [plan.id]),
        "23514",
      );
      assert.equal(await sqlStateOfQuery("UPDATE events SET held = -1 WHERE id = $1", [plan.id]), "23514");
    });

    it("a seat has at most one claim, a key one answer, a customer no negative count", async () => {
      const seat =
        "INSERT INTO seat_claims (event_id, seat_id, owner_id, sold) VALUES ($1, 'A-1-1', $2, true)";
      assert.equal(await sqlStateOfQuery(seat, [plan.id, "o1"]), null);
      assert.equal(await sqlStateOfQuery(seat, [plan.id, "o2"]), "23505");
      const key =
        "INSERT INTO idempotency (event_id, key, fingerprint, outcome, created_at) VALUES ($1, 'k', 'f', '{}', now())";
      assert.equal(await sqlStateOfQuery(key, [plan.id]), null);
      assert.equal(await sqlStateOfQuery(key, [plan.id]), "23505");
      assert.equal(
        await sqlStateOfQuery(
          "INSERT INTO customer_tickets (event_id, customer_id, tickets) VALUES ($1, 'c', -1)",
          [plan.id],
        ),
        "23514",
      );
    });
  });

  describe("hold expiry by many sweepers", () => {
    it("passes over an event that is busy (locked) and sweeps the next one", async () => {
      const fixture = await open("sweep_busy", { poolSize: 2 });
      const { store } = fixture;
      const t0 = new Date();
      const busy = await newEvent(store, 10);
      const idle = await newEvent(store, 10);
      for (const plan of [busy, idle]) {
        const [outcome] = await store.execute(
          plan.id,
          [
            {
              type: "hold",
              customerId: "c",
              selection: { quantity: 2, seats: null },
              ttlSeconds: 30,
              idempotency: null,
            },
          ],
          null,
          t0,
        );
        assert.equal(outcome?.ok, true);
      }
      const holder = await lockEventRow(TEST_POSTGRES_URL, fixture.schema, busy.id);
      try {
        // A limit of one event: the busy one comes first by id, and must not use up the limit.
        assert.equal(await store.expireHolds(new Date(t0.getTime() + 31_000), 1), 1);
        assert.equal((await store.getEvent(idle.id))?.held, 0);
      } finally {
        await holder.release();
      }
      assert.equal((await store.getEvent(busy.id))?.held, 2);
      assert.equal(await store.expireHolds(new Date(t0.getTime() + 31_000), 1), 1);
      assert.equal((await store.getEvent(busy.id))?.held, 0);
    });

    it("expires every overdue hold exactly once across concurrent sweeps", async () => {
      const { store } = await open("sweep", { poolSize: 4 });
      const t0 = new Date();
      const plans = [await newEvent(store, 50), await newEvent(store, 50)];
      for (const plan of plans) {
        const holds: Command[] = Array.from({ length: 20 }, (_, i) => ({
          type: "hold",
          customerId: `c${i}`,
          selection: { quantity: 2, seats: null },
          ttlSeconds: 30,
          idempotency: null,
        }));
        await store.execute(plan.id, holds, null, t0);
      }
      const later = new Date(t0.getTime() + 31_000);
      let expired = 0;
      for (let round = 0; round < 20; round++) {
        const counts = await Promise.all([1, 2, 3, 4].map(() => store.expireHolds(later, 7)));
        expired += counts.reduce((a, b) => a + b, 0);
        if (counts.every((count) => count === 0)) break;
      }
      assert.equal(expired, 40);
      for (const plan of plans) {
        const event = await store.getEvent(plan.id);
        assert.deepEqual([event?.sold, event?.held, event?.available], [0, 0, 50]);
      }
    });
  });
});
