/** The store contract against PostgreSQL on 127.0.0.1:5432, in a schema of its own dropped afterwards. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import type { EventPlan } from "../../src/domain/event.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command } from "../../src/domain/sale.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import { advisoryKeyFor } from "../../src/postgres/advisory-key.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { createTestPostgresStore, dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { describePostgresSlowPath } from "./postgres-poison-contract.js";
import type { CommitBreaker } from "./execute-many-contract.js";
import { describeExecuteManyContract } from "./execute-many-contract.js";
import type { StoreFixture } from "./store-contract.js";
import { describeStoreContract } from "./store-contract.js";
import { describeWebhookContract } from "./webhook-contract.js";

const skip = await postgresSkip();
/** The schema of each fixture the contract factory made (for the commit breaker). */
const schemaOfFixture = new WeakMap<StoreFixture, string>();

async function contractFixture(): Promise<StoreFixture> {
  const schema = freshSchemaName("contract");
  const open = async () => {
    const store = new PostgresStore({
      url: TEST_POSTGRES_URL,
      schema,
      poolSize: 4,
      statementTimeoutMs: 5000,
    });
    await store.init();
    return store;
  };
  const store = await open();
  const others: PostgresStore[] = [];
  const fixture: StoreFixture = {
    store,
    async openAnother() {
      const another = await open();
      others.push(another);
      return another;
    },
    async cleanup() {
      await Promise.all([store, ...others].map((s) => s.close()));
      await dropSchema(TEST_POSTGRES_URL, schema);
    },
  };
  schemaOfFixture.set(fixture, schema);
  return fixture;
}

describeStoreContract("postgres", contractFixture, skip === undefined ? {} : { skip });

/**
 * Makes COMMIT itself fail: a deferred constraint trigger, checked at commit, refuses any transaction
 * that wrote an order for the breaker's customer (with SQLSTATE 40001, as a commit can fail).
 */
function commitBreaker(fixture: StoreFixture): CommitBreaker {
  const schema = pg.escapeIdentifier(schemaOfFixture.get(fixture) ?? "");
  const customerId = "commit-breaker";
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    customerId,
    install: () =>
      run(`
        CREATE FUNCTION ${schema}.break_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.customer_id = '${customerId}' THEN
            RAISE EXCEPTION 'commit broken on purpose' USING ERRCODE = '40001';
          END IF;
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER break_commit AFTER INSERT ON ${schema}.orders
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${schema}.break_commit();`),
    remove: () =>
      run(`DROP TRIGGER break_commit ON ${schema}.orders; DROP FUNCTION ${schema}.break_commit();`),
  };
}

describeExecuteManyContract(
  "postgres",
  contractFixture,
  skip === undefined ? { commitBreaker, fencesShared: true } : { skip, commitBreaker, fencesShared: true },
);

describeWebhookContract(
  "postgres",
  async () => {
    const schema = freshSchemaName("webhooks");
    const stores: PostgresStore[] = [];
    const open = async () => {
      const store = new PostgresStore({
        url: TEST_POSTGRES_URL,
        schema,
        poolSize: 4,
        statementTimeoutMs: 5000,
      });
      await store.init();
      stores.push(store);
      return store;
    };
    const store = await open();
    return {
      store,
      openAnother: open,
      async cleanup() {
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(TEST_POSTGRES_URL, schema);
      },
    };
  },
  skip === undefined ? {} : { skip },
);

describePostgresSlowPath(
  "direct",
  async () => ({ url: TEST_POSTGRES_URL, close: async () => undefined }),
  skip === undefined ? {} : { skip },
);

describe("PostgreSQL executeMany with advisory transaction locks", { skip }, () => {
  it("takes each part's advisory lock in its transaction; a part whose lock stays busy fails alone", async () => {
    const { store, cleanup } = await createTestPostgresStore("many_locks");
    const holder = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await holder.connect();
    try {
      const plans = [0, 1, 2].map((n) =>
        planEvent({ name: `L${n}`, capacity: 5 }, newEventId(Date.now()), new Date()),
      );
      for (const plan of plans) await store.createEvent(plan);
      const [a, b, c] = plans as [EventPlan, EventPlan, EventPlan];
      const guardOf = (plan: EventPlan): WriteGuard => ({
        lockKey: `event:${plan.id}`,
        fence: null,
        signal: new AbortController().signal,
        transactionLock: { waitMs: 150 },
      });
      const buy: Command = {
        type: "purchase",
        customerId: "x",
        selection: { quantity: 1, seats: null },
        idempotency: null,
      };
      // Another transaction holds b's lock for the whole call.
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1::bigint)", [
        advisoryKeyFor(`event:${b.id}`).toString(),
      ]);
      const results = await store.executeMany(
        [c, b, a].map((plan) => ({ eventId: plan.id, commands: [buy], guard: guardOf(plan) })),
        new Date(),
      );
      assert.ok(results[0]?.ok && results[0].outcomes[0]?.ok, "c sold");
      assert.ok(results[1] && !results[1].ok && (results[1].error as { code?: string }).code === "LOCK_BUSY");
      assert.ok(results[2]?.ok && results[2].outcomes[0]?.ok, "a sold");
      // The locks were the transaction's: released by its commit, not left on a pooled connection.
      for (const plan of [a, c]) {
        const [free] = (
          await holder.query<{ free: boolean }>("SELECT pg_try_advisory_xact_lock($1::bigint) AS free", [
            advisoryKeyFor(`event:${plan.id}`).toString(),
          ])
        ).rows;
        assert.equal(free?.free, true, "its lock went with the transaction's commit");
      }
      await holder.query("COMMIT");
      assert.deepEqual(
        await Promise.all(plans.map(async (plan) => (await store.getEvent(plan.id))?.sold)),
        [1, 0, 1],
      );
      const [again] = await store.executeMany(
        [{ eventId: b.id, commands: [buy], guard: guardOf(b) }],
        new Date(),
      );
      assert.ok(again?.ok && again.outcomes[0]?.ok, "b sells once its lock is free");
    } finally {
      await holder.end();
      await cleanup();
    }
  });
});

describe("PostgreSQL batches: a fixed number of round trips whatever their size", { skip }, () => {
  /** Round trips (queries and pipelines handed to a pg client) that `work` makes. */
  async function roundTrips(work: () => Promise<unknown>): Promise<number> {
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const query = proto.query;
    let count = 0;
    proto.query = function (this: unknown, ...args: unknown[]) {
      count++;
      return query.apply(this, args);
    };
    try {
      await work();
    } finally {
      proto.query = query;
    }
    return count;
  }

  it("execute() and executeMany() take as many round trips for many commands and events as for one", async () => {
    const { store, cleanup } = await createTestPostgresStore("round_trips");
    try {
      const plans = Array.from({ length: 30 }, (_, n) =>
        planEvent({ name: `R${n}`, capacity: 1000, maxPerCustomer: 8 }, newEventId(Date.now()), new Date()),
      );
      for (const plan of plans) await store.createEvent(plan);
      let customer = 0;
      const buy = (): Command => ({
        type: "purchase",
        customerId: `c${++customer}`,
        selection: { quantity: 1, seats: null },
        idempotency: { key: `k${customer}`, fingerprint: "f" },
      });
      const hold = (): Command => ({
        type: "hold",
        customerId: `c${++customer}`,
        selection: { quantity: 1, seats: null },
        ttlSeconds: 600,
        idempotency: null,
      });
      const now = new Date();
      const [first] = plans as [EventPlan];
      // Holds to confirm, release, extend, and an order to cancel, on the first event.
      const made = await store.execute(first.id, [hold(), hold(), hold(), hold(), hold(), buy()], null, now);
      const ids = made.map((outcome) => (outcome.ok ? (outcome.value as { id: string }).id : ""));
      const one = await roundTrips(() => store.execute(first.id, [buy()], null, now));
      const many = await roundTrips(() =>
        store.execute(first.id, Array.from({ length: 40 }, buy), null, now),
      );
      assert.equal(many, one, "40 purchases as one");
      const mixed = await roundTrips(() =>
        store.execute(
          first.id,
          [
            { type: "confirm-hold", holdId: ids[0]!, idempotency: null },
            { type: "confirm-hold", holdId: ids[1]!, idempotency: null },
            { type: "release-hold", holdId: ids[2]! },
            { type: "release-hold", holdId: ids[3]! },
            { type: "extend-hold", holdId: ids[4]!, ttlSeconds: 900 },
            { type: "cancel-order", orderId: ids[5]! },
            buy(),
          ],
          null,
          now,
        ),
      );
      assert.equal(mixed, one, "confirms, releases, an extension and a cancel add no round trip");
      const spreadOne = await roundTrips(() =>
        store.executeMany([{ eventId: first.id, commands: [buy()], guard: null }], now),
      );
      const spreadMany = await roundTrips(() =>
        store.executeMany(
          plans.map((plan) => ({ eventId: plan.id, commands: [buy(), buy()], guard: null })),
          now,
        ),
      );
      assert.equal(spreadMany, spreadOne, "30 events as one");
      assert.equal(spreadOne, one, "executeMany of one event as execute()");
      const sold = await Promise.all(plans.map(async (plan) => (await store.getEvent(plan.id))?.sold));
      assert.ok(
        sold.slice(1).every((n) => n === 2),
        "every event sold its two",
      );
    } finally {
      await cleanup();
    }
  });

  it("commits nothing of a batch whose guarded write finds no row, though its COMMIT was sent with it", async () => {
    const { store, schema, cleanup } = await createTestPostgresStore("batch_guard");
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    const q = pg.escapeIdentifier(schema);
    try {
      const [a, b] = Array.from({ length: 2 }, (_, n) =>
        planEvent({ name: `G${n}`, capacity: 100, maxPerCustomer: 8 }, newEventId(Date.now()), new Date()),
      ) as [EventPlan, EventPlan];
      for (const plan of [a, b]) await store.createEvent(plan);
      const buy = (key: string): Command => ({
        type: "purchase",
        customerId: key,
        selection: { quantity: 1, seats: null },
        idempotency: { key, fingerprint: "f" },
      });
      const [held] = await store.execute(
        a.id,
        [
          {
            type: "hold",
            customerId: "h",
            selection: { quantity: 2, seats: null },
            ttlSeconds: 600,
            idempotency: null,
          },
        ],
        null,
        new Date(),
      );
      const holdId = held?.ok ? (held.value as { id: string }).id : "";
      // What a writer without the row lock would leave: a's counters row no longer to be found by the
      // guarded update, and no hold to be found by the guarded confirm (each row skipped by a trigger).
      await admin.query(`
        CREATE FUNCTION ${q}.skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER skip_a BEFORE UPDATE ON ${q}.events
          FOR EACH ROW WHEN (OLD.id = '${a.id}') EXECUTE FUNCTION ${q}.skip_row();
        CREATE TRIGGER skip_holds BEFORE UPDATE ON ${q}.holds FOR EACH ROW EXECUTE FUNCTION ${q}.skip_row();`);
      const code = (error: unknown) => (error as { code?: string }).code;
      const [refused, sold] = await store.executeMany(
        [
          { eventId: a.id, commands: [buy("ka")], guard: null },
          { eventId: b.id, commands: [buy("kb")], guard: null },
        ],
        new Date(),
      );
      assert.ok(refused && !refused.ok && code(refused.error) === "STORE_CONFLICT", "a's part failed alone");
      assert.ok(sold?.ok && sold.outcomes[0]?.ok, "b's part committed");
      await assert.rejects(store.execute(a.id, [buy("ka")], null, new Date()), { code: "STORE_CONFLICT" });
      await assert.rejects(
        store.execute(a.id, [{ type: "confirm-hold", holdId, idempotency: null }], null, new Date()),
        { code: "STORE_CONFLICT" },
      );
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${q}.orders WHERE event_id = $1`,
        [a.id],
      );
      assert.equal(rows[0]?.n, 0, "no order of a's was committed");
      assert.equal((await store.getHold(holdId))?.status, "active");
      assert.deepEqual(
        await Promise.all([a, b].map(async (plan) => (await store.getEvent(plan.id))?.sold)),
        [0, 1],
      );
      await admin.query(`DROP TRIGGER skip_a ON ${q}.events; DROP TRIGGER skip_holds ON ${q}.holds`);
      // Nothing of the refused batches was kept: the key sells now, not replayed; the hold confirms.
      const [retry] = await store.execute(a.id, [buy("ka")], null, new Date());
      assert.deepEqual(retry && { ok: retry.ok, replayed: retry.replayed }, { ok: true, replayed: false });
      const [confirmed] = await store.execute(
        a.id,
        [{ type: "confirm-hold", holdId, idempotency: null }],
        null,
        new Date(),
      );
      assert.ok(confirmed?.ok);
      assert.equal((await store.getEvent(a.id))?.sold, 3);
    } finally {
      await admin.end();
      await cleanup();
    }
  });
});
