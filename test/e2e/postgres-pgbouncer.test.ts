/**
 * The PostgreSQL store behind PgBouncer in transaction mode (a server connection is lent for one
 * transaction at a time): the store contract, the cross-process oversell tests, the advisory
 * transaction lock and the statement timeout all hold there too, which shows that the store keeps no
 * session state across statements.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command } from "../../src/domain/sale.js";
import { advisoryKeyFor } from "../../src/postgres/advisory-key.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { describePostgresSlowPath } from "../contract/postgres-poison-contract.js";
import { describeExecuteManyContract } from "../contract/execute-many-contract.js";
import type { StoreFixture } from "../contract/store-contract.js";
import { describeStoreContract } from "../contract/store-contract.js";
import {
  freePortIn,
  serversSkipReason,
  startPgBouncer,
  type PgBouncer,
} from "../support/postgres-servers.js";
import { dropSchema, freshSchemaName, lockEventRow } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { runBuyers } from "../support/postgres-buyers.js";

const skip = (await postgresSkip()) ?? serversSkipReason();
const target = { port: Number(new URL(TEST_POSTGRES_URL).port || 5432), database: "test" };

/** A store through a PgBouncer of its own (transaction mode), in a schema of its own. */
async function bouncedFixture(): Promise<StoreFixture> {
  const bouncer = await startPgBouncer(await freePortIn(16432, 16439), target, 4);
  const schema = freshSchemaName("bouncer_contract");
  const stores: PostgresStore[] = [];
  const open = async () => {
    const store = new PostgresStore({ url: bouncer.url, schema, poolSize: 4, statementTimeoutMs: 5000 });
    stores.push(store);
    await store.init();
    return store;
  };
  return {
    store: await open(),
    openAnother: open,
    async cleanup() {
      await Promise.all(stores.map((store) => store.close()));
      await bouncer.stop();
      await dropSchema(TEST_POSTGRES_URL, schema);
    },
  };
}

describeStoreContract(
  "postgres through PgBouncer (transaction mode)",
  bouncedFixture,
  skip === undefined ? {} : { skip },
);

// Several events' batches in one transaction, through PgBouncer: unnamed statements, one Sync a pipeline.
describeExecuteManyContract(
  "postgres through PgBouncer (transaction mode)",
  bouncedFixture,
  skip === undefined ? { fencesShared: true } : { skip, fencesShared: true },
);

describePostgresSlowPath(
  "through PgBouncer (transaction mode)",
  async () => {
    const bouncer = await startPgBouncer(await freePortIn(16432, 16439), target, 2);
    return { url: bouncer.url, close: () => bouncer.stop() };
  },
  skip === undefined ? {} : { skip },
);

describe("postgres through PgBouncer (transaction mode)", { skip, timeout: 120_000 }, () => {
  let bouncer: PgBouncer | undefined;
  let store: PostgresStore | undefined;
  const schema = freshSchemaName("bouncer");
  before(async () => {
    // Fewer server connections than the store's pool: transactions of different clients share them.
    bouncer = await startPgBouncer(await freePortIn(16432, 16439), target, 3);
    store = new PostgresStore({ url: bouncer.url, schema, poolSize: 6, statementTimeoutMs: 400 });
    await store.init();
  });
  after(async () => {
    await store?.close();
    await bouncer?.stop();
    await dropSchema(TEST_POSTGRES_URL, schema);
  });

  const buy = (customerId: string): Command => ({
    type: "purchase",
    customerId,
    selection: { quantity: 1, seats: null },
    idempotency: null,
  });

  it("4 processes, 1,000 purchases, capacity 500: exactly 500 sold", async () => {
    assert.ok(store && bouncer);
    const plan = planEvent({ name: "Hot", capacity: 500, maxPerCustomer: 8 }, newEventId(), new Date());
    await store.createEvent(plan);
    const reports = await runBuyers(bouncer.url, schema, plan.id, {
      processes: 4,
      buyers: 250,
      concurrency: 4,
      kind: "general",
      seats: 0,
    });
    assert.deepEqual(
      reports.map((r) => r.errors),
      [{}, {}, {}, {}],
    );
    assert.equal((await store.getEvent(plan.id))?.sold, 500);
    assert.equal(
      reports.reduce((n, r) => n + r.sold, 0),
      500,
    );
  });

  it("4 processes with overlapping seat requests: no seat in two orders", async () => {
    assert.ok(store && bouncer);
    const plan = planEvent(
      { name: "Seated", seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 60 }] } },
      newEventId(),
      new Date(),
    );
    await store.createEvent(plan);
    const reports = await runBuyers(bouncer.url, schema, plan.id, {
      processes: 4,
      buyers: 100,
      concurrency: 4,
      kind: "seated",
      seats: 60,
    });
    const seats: string[] = [];
    for (const id of reports.flatMap((r) => r.orders))
      seats.push(...((await store.getOrder(id))?.seats ?? []));
    assert.equal(new Set(seats).size, seats.length, "a seat was sold twice");
    assert.equal((await store.getEvent(plan.id))?.sold, seats.length);
  });

  it("the advisory transaction lock and the statement timeout work per transaction", async () => {
    assert.ok(store);
    const plan = planEvent({ name: "Lock", capacity: 10 }, newEventId(), new Date());
    await store.createEvent(plan);
    const lockKey = `event:${plan.id}`;
    const guard = {
      lockKey,
      fence: 1,
      signal: new AbortController().signal,
      transactionLock: { waitMs: 150 },
    };
    const holder = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1)", [advisoryKeyFor(lockKey).toString()]);
      await assert.rejects(() => store!.execute(plan.id, [buy("a")], guard, new Date()), {
        code: "LOCK_BUSY",
      });
      await holder.query("COMMIT");
      const [sold] = await store.execute(plan.id, [buy("a")], guard, new Date());
      assert.equal(sold?.ok, true);
      // A stuck statement (the event row locked from outside) ends at the 400 ms statement timeout.
      const rowHolder = await lockEventRow(TEST_POSTGRES_URL, schema, plan.id);
      try {
        await assert.rejects(() => store!.execute(plan.id, [buy("b")], null, new Date()), {
          code: "STORE_UNAVAILABLE",
        });
      } finally {
        await rowHolder.release();
      }
      // No session setting leaked into the shared server connections: a plain transaction through
      // PgBouncer sees the server's defaults again.
      const probe = new pg.Client({ connectionString: bouncer!.url });
      await probe.connect();
      try {
        const { rows } = await probe.query("SHOW statement_timeout");
        assert.equal(rows[0]?.statement_timeout, "0");
      } finally {
        await probe.end();
      }
      assert.equal((await store.getEvent(plan.id))?.sold, 1);
    } finally {
      await holder.end();
    }
  });
});
