/**
 * `npm run bench -- postgres`: purchases per second and latency of the stores side by side —
 * PostgreSQL (plain tables, and the same tables hash-partitioned by event), SQLite with one file and
 * SQLite with a file per event — on 1 hot event and on 50 events, for 1, 2 and 4 instances.
 *
 * An "instance" is an OS process with its own store handle, as a server instance would have, sending
 * purchases of one ticket straight to Store.execute (one command per transaction, no batching, no lock),
 * 8 at a time. That measures the store, not HTTP or the balancer. First, the two PostgreSQL drivers are
 * compared on the same transaction (why the store uses `pg`). Results go to docs/benchmarks/postgres.md.
 *
 * Worker mode (internal): `postgres.bench.js worker <json>` runs one instance and prints its latencies.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import postgresJs from "postgres";
import { planEvent } from "../src/domain/event.js";
import { newEventId } from "../src/domain/ids.js";
import type { Command } from "../src/domain/sale.js";
import type { Store } from "../src/store/store.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { machineNote } from "./machine-note.js";

const run = promisify(execFile);
const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const DURATION_MS = Number(process.env.BOXOFFICE_BENCH_DURATION_MS ?? 2000);
const IN_FLIGHT = 8;
const PARTITIONS = 8;

type StoreSpec =
  | { kind: "postgres"; schema: string; partitioned: boolean }
  | { kind: "sqlite"; dir: string; layout: "single" | "per-event" };

interface WorkerJob {
  spec: StoreSpec;
  /** Purchases per Store.execute (one transaction, one commit): 1, or a server's group commit. */
  batch: number;
  eventIds: string[];
  startAtMs: number;
  endAtMs: number;
}

function openStore(spec: StoreSpec): Store {
  if (spec.kind === "postgres") {
    return new PostgresStore({
      url: POSTGRES_URL,
      schema: spec.schema,
      poolSize: IN_FLIGHT,
      statementTimeoutMs: 5000,
    });
  }
  return new SqliteStore({
    kind: "sqlite",
    dir: spec.dir,
    layout: spec.layout,
    durability: "full",
    maxOpenEvents: 64,
  });
}

/** One instance: buys one ticket at a time on random events, IN_FLIGHT at once, between the two times. */
async function worker(job: WorkerJob): Promise<void> {
  const store = openStore(job.spec);
  await store.init();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, job.startAtMs - Date.now())));
  const latenciesMs: number[] = [];
  let errors = 0;
  let n = 0;
  const loop = async () => {
    while (Date.now() < job.endAtMs) {
      const eventId = job.eventIds[Math.floor(Math.random() * job.eventIds.length)] as string;
      const commands: Command[] = Array.from({ length: job.batch }, () => ({
        type: "purchase",
        customerId: `w${process.pid}-${++n}`,
        selection: { quantity: 1, seats: null },
        idempotency: { key: `k${process.pid}-${n}`, fingerprint: "f" },
      }));
      const started = performance.now();
      try {
        const outcomes = await store.execute(eventId, commands, null, new Date());
        const elapsedMs = performance.now() - started;
        for (const outcome of outcomes) {
          if (outcome.ok) latenciesMs.push(elapsedMs);
          else errors++;
        }
      } catch {
        errors += commands.length;
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  await store.close();
  process.stdout.write(
    JSON.stringify({ latenciesMs: latenciesMs.map((ms) => Math.round(ms * 100) / 100), errors }),
  );
}

/** The partitioned variant: the store's own tables, hash-partitioned by event id (bench only). */
async function createPartitionedSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  const s = pg.escapeIdentifier(schema);
  const partitions = (table: string) =>
    Array.from(
      { length: PARTITIONS },
      (_, i) =>
        `CREATE TABLE ${s}.${table}_p${i} PARTITION OF ${s}.${table} FOR VALUES WITH (MODULUS ${PARTITIONS}, REMAINDER ${i});`,
    ).join("\n");
  try {
    await client.query(`
      CREATE SCHEMA ${s};
      CREATE TABLE ${s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO ${s}.schema_migrations (version, name) VALUES (1, 'initial');
      CREATE TABLE ${s}.events (id text COLLATE "C" PRIMARY KEY, name text NOT NULL, kind text NOT NULL,
        capacity integer NOT NULL, sold integer NOT NULL DEFAULT 0, held integer NOT NULL DEFAULT 0, sections jsonb,
        max_per_order integer NOT NULL, max_per_customer integer NOT NULL, starts_at timestamptz,
        created_at timestamptz NOT NULL, CHECK (sold >= 0 AND held >= 0 AND sold + held <= capacity));
      CREATE TABLE ${s}.orders (id text NOT NULL, event_id text NOT NULL REFERENCES ${s}.events (id),
        customer_id text NOT NULL, quantity integer NOT NULL CHECK (quantity >= 1), seats text[], status text NOT NULL,
        created_at timestamptz NOT NULL, cancelled_at timestamptz, PRIMARY KEY (event_id, id)) PARTITION BY HASH (event_id);
      ${partitions("orders")}
      CREATE TABLE ${s}.holds (id text NOT NULL, event_id text NOT NULL REFERENCES ${s}.events (id),
        customer_id text NOT NULL, quantity integer NOT NULL, seats text[], status text NOT NULL,
        expires_at timestamptz NOT NULL, PRIMARY KEY (event_id, id)) PARTITION BY HASH (event_id);
      ${partitions("holds")}
      CREATE INDEX ON ${s}.holds (event_id, expires_at) WHERE status = 'active';
      CREATE TABLE ${s}.seat_claims (event_id text NOT NULL REFERENCES ${s}.events (id), seat_id text NOT NULL,
        owner_id text NOT NULL, sold boolean NOT NULL, PRIMARY KEY (event_id, seat_id)) PARTITION BY HASH (event_id);
      ${partitions("seat_claims")}
      CREATE TABLE ${s}.customer_tickets (event_id text NOT NULL REFERENCES ${s}.events (id), customer_id text NOT NULL,
        tickets integer NOT NULL CHECK (tickets >= 0), PRIMARY KEY (event_id, customer_id)) PARTITION BY HASH (event_id);
      ${partitions("customer_tickets")}
      CREATE TABLE ${s}.idempotency (event_id text NOT NULL REFERENCES ${s}.events (id), key text NOT NULL,
        fingerprint text NOT NULL, outcome jsonb NOT NULL, created_at timestamptz NOT NULL,
        PRIMARY KEY (event_id, key)) PARTITION BY HASH (event_id);
      ${partitions("idempotency")}
      CREATE TABLE ${s}.fences (lock_key text PRIMARY KEY, fence bigint NOT NULL);
    `);
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await client.end();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

interface Row {
  store: string;
  events: number;
  batch: number;
  instances: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(
  label: string,
  makeSpec: () => Promise<StoreSpec>,
  events: number,
  instances: number,
  batch = 1,
): Promise<Row> {
  const spec = await makeSpec();
  const store = openStore(spec);
  await store.init();
  const eventIds: string[] = [];
  for (let i = 0; i < events; i++) {
    const plan = planEvent(
      { name: `Bench ${i}`, capacity: 1_000_000, maxPerCustomer: 8 },
      newEventId(),
      new Date(),
    );
    await store.createEvent(plan);
    eventIds.push(plan.id);
  }
  await store.close();
  const startAtMs = Date.now() + 1500;
  const job: WorkerJob = { spec, batch, eventIds, startAtMs, endAtMs: startAtMs + DURATION_MS };
  const self = fileURLToPath(import.meta.url);
  const outputs = await Promise.all(
    Array.from({ length: instances }, () =>
      run(process.execPath, [self, "worker", JSON.stringify(job)], {
        maxBuffer: 64 * 1024 * 1024,
        timeout: 60_000,
      }),
    ),
  );
  const results = outputs.map(
    (output) => JSON.parse(output.stdout) as { latenciesMs: number[]; errors: number },
  );
  const latencies = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
  if (spec.kind === "postgres") await dropSchema(spec.schema);
  else rmSync(spec.dir, { recursive: true, force: true });
  const row: Row = {
    store: label,
    events,
    batch,
    instances,
    perSecond: Math.round(latencies.length / (DURATION_MS / 1000)),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors: results.reduce((sum, result) => sum + result.errors, 0),
  };
  console.log(JSON.stringify(row));
  return row;
}

interface DriverRow {
  driver: string;
  perSecond: number;
  p50: number;
  p99: number;
}

/**
 * The same small write transaction (lock a row, guarded update, insert, commit) through `pg` and through
 * `postgres` (porsager), 16 callers on a pool of 8, on 50 rows.
 */
async function compareDrivers(): Promise<DriverRow[]> {
  const schema = `bench_drivers_${process.pid}`;
  const s = pg.escapeIdentifier(schema);
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${s};
    CREATE TABLE ${s}.counters (id integer PRIMARY KEY, sold integer NOT NULL, capacity integer NOT NULL);
    CREATE TABLE ${s}.sales (id bigserial PRIMARY KEY, counter integer NOT NULL, customer text NOT NULL);
    INSERT INTO ${s}.counters SELECT n, 0, 1000000000 FROM generate_series(1, 50) AS n;`);
  const lockRow = `SELECT sold FROM ${s}.counters WHERE id = $1 FOR UPDATE`;
  const update = `UPDATE ${s}.counters SET sold = sold + 1 WHERE id = $1 AND sold + 1 <= capacity`;
  const insert = `INSERT INTO ${s}.sales (counter, customer) VALUES ($1, $2)`;
  const measureDriver = async (
    driver: string,
    transaction: (id: number) => Promise<void>,
  ): Promise<DriverRow> => {
    const latenciesMs: number[] = [];
    const endAtMs = Date.now() + DURATION_MS;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (Date.now() < endAtMs) {
          const started = performance.now();
          await transaction(1 + Math.floor(Math.random() * 50));
          latenciesMs.push(performance.now() - started);
        }
      }),
    );
    latenciesMs.sort((a, b) => a - b);
    const row = {
      driver,
      perSecond: Math.round(latenciesMs.length / (DURATION_MS / 1000)),
      p50: percentile(latenciesMs, 0.5),
      p99: percentile(latenciesMs, 0.99),
    };
    console.log(JSON.stringify(row));
    return row;
  };
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 8 });
  const withPg = async (id: number) => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(lockRow, [id]);
      await client.query(update, [id]);
      await client.query(insert, [id, "c"]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  };
  const withPostgresJs = (prepare: boolean) => {
    const sql = postgresJs(POSTGRES_URL, { max: 8, prepare, onnotice: () => undefined });
    const transaction = async (id: number) => {
      await sql.begin(async (tx) => {
        await tx.unsafe(lockRow, [id]);
        await tx.unsafe(update, [id]);
        await tx.unsafe(insert, [id, "c"]);
      });
    };
    return { sql, transaction };
  };
  const unprepared = withPostgresJs(false);
  const prepared = withPostgresJs(true);
  try {
    return [
      await measureDriver("pg (unnamed statements)", withPg),
      await measureDriver("postgres, prepare: false (what PgBouncer 1.18 needs)", unprepared.transaction),
      await measureDriver("postgres, prepare: true", prepared.transaction),
    ];
  } finally {
    await pool.end();
    await unprepared.sql.end();
    await prepared.sql.end();
    await admin.query(`DROP SCHEMA ${s} CASCADE`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const postgres = async (): Promise<StoreSpec> => ({
    kind: "postgres",
    schema: `bench_${process.pid}_${Date.now()}`,
    partitioned: false,
  });
  const partitioned = async (): Promise<StoreSpec> => {
    const schema = `bench_part_${process.pid}_${Date.now()}`;
    await createPartitionedSchema(schema);
    return { kind: "postgres", schema, partitioned: true };
  };
  const sqlite = (layout: "single" | "per-event") => async (): Promise<StoreSpec> => ({
    kind: "sqlite",
    dir: mkdtempSync(join(os.tmpdir(), `bench-${layout}-`)),
    layout,
  });
  const stores: [string, () => Promise<StoreSpec>][] = [
    ["PostgreSQL", postgres],
    ["SQLite, one file", sqlite("single")],
    ["SQLite, file per event", sqlite("per-event")],
  ];
  const drivers = await compareDrivers();
  const rows: Row[] = [];
  for (const [label, makeSpec] of stores) {
    for (const events of [1, 50]) {
      for (const instances of [1, 2, 4]) rows.push(await measure(label, makeSpec, events, instances));
    }
  }
  // Plain tables against the same tables hash-partitioned by event id.
  for (const events of [1, 50]) {
    rows.push(await measure(`PostgreSQL, ${PARTITIONS} hash partitions`, partitioned, events, 4));
  }
  // One commit for many purchases (what a server's group commit does): the hot-event limit moves.
  for (const [label, makeSpec] of stores) rows.push(await measure(label, makeSpec, 1, 4, 10));
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const lines = [
    "# Benchmark: the stores side by side (PostgreSQL, SQLite)",
    "",
    `Measured ${new Date().toISOString()} on ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,`,
    `Node ${process.version}, PostgreSQL on 127.0.0.1 (same machine), by \`npm run bench -- postgres\`.`,
    "",
    "Each instance is an OS process with its own store handle sending purchases of one ticket (with an",
    `idempotency key) straight to \`Store.execute\`, ${IN_FLIGHT} in flight, one command per transaction, no lock, for`,
    `${DURATION_MS / 1000} s. Every sale is durable before it is counted (PostgreSQL \`synchronous_commit = on\`,`,
    'SQLite `synchronous = FULL`). p50/p99 are per purchase, in milliseconds. "1 event" is one hot event;',
    '"50 events" spreads the purchases evenly over 50. "batch" is the number of purchases per transaction',
    "(10: the latency is that of the whole batch).",
    "",
    machineNote(),
    "",
    "## The stores",
    "",
    "| store | events | instances | batch | purchases/s | p50 ms | p99 ms | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.store} | ${r.events} | ${r.instances} | ${r.batch} | ${r.perSecond} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
    ),
    "",
    "## The drivers (why the store uses `pg`)",
    "",
    "One small write transaction (lock a row, guarded update, insert, commit) from 16 callers through a pool",
    `of 8, on 50 rows, for ${DURATION_MS / 1000} s, in one process.`,
    "",
    "| driver | transactions/s | p50 ms | p99 ms |",
    "|---|---:|---:|---:|",
    ...drivers.map((d) => `| ${d.driver} | ${d.perSecond} | ${d.p50.toFixed(2)} | ${d.p99.toFixed(2)} |`),
    "",
  ];
  mkdirSync("docs/benchmarks", { recursive: true });
  writeFileSync("docs/benchmarks/postgres.md", lines.join("\n"));
  console.log("wrote docs/benchmarks/postgres.md");
}

if (process.argv[2] === "worker") await worker(JSON.parse(process.argv[3] ?? "{}") as WorkerJob);
else await main();
