/**
 * The fault matrix: one run is one stack (real `boxoffice server` processes behind a real `boxoffice lb`,
 * on SQLite files or on a PostgreSQL server and Redis servers of the run's own), a workload of buyers
 * (fault-workload.ts), and one fault injected while the sale is under way. After the run the independent
 * verifier (src/rehearsal/verifier.ts) reads the API and the client's log, and the run collects evidence
 * that the fault hit sales in flight, so that it cannot pass vacuously.
 *
 * The private servers matter: a restart fault restarts the run's own PostgreSQL and Redis, never the
 * shared ones other suites use at the same time.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { verify, type VerifierReport } from "../../src/rehearsal/verifier.js";
import type { ClientRecord } from "../../src/rehearsal/client-log.js";
import { freePort, spawnBalancer, type SpawnedBalancer } from "./backend-fixture.js";
import { startThrowawayPostgres, freePortIn, type ThrowawayPostgres } from "./postgres-servers.js";
import { RedisServer } from "./redis-servers.js";
import { E2E_ADMIN_TOKEN, ServerProcess } from "./server-process.js";
import { FaultWorkload } from "./fault-workload.js";
import { freezeWithRequestsOpen } from "./freeze-with-requests-open.js";

export const STACKS = ["sqlite-per-event", "sqlite-single", "postgres-redis", "postgres-redlock"] as const;
export type StackName = (typeof STACKS)[number];
export const FAULTS = ["kill", "pause", "redis-restart", "postgres-restart", "slow"] as const;
export type FaultName = (typeof FAULTS)[number];

/** Whether a fault applies to a stack (Redis faults need Redis, PostgreSQL faults PostgreSQL). */
export function faultApplies(stack: StackName, fault: FaultName): boolean {
  if (fault === "redis-restart") return stack === "postgres-redis" || stack === "postgres-redlock";
  if (fault === "postgres-restart") return stack.startsWith("postgres");
  return true;
}

/** Every (stack, fault) that applies: the whole matrix. */
export const WHOLE_MATRIX: readonly { stack: StackName; fault: FaultName }[] = STACKS.flatMap((stack) =>
  FAULTS.filter((fault) => faultApplies(stack, fault)).map((fault) => ({ stack, fault })),
);

/** The quick subset `npm test` runs: each stack once, each fault of its own at least once. */
export const QUICK_MATRIX: readonly { stack: StackName; fault: FaultName }[] = [
  { stack: "sqlite-per-event", fault: "kill" },
  { stack: "sqlite-single", fault: "pause" },
  { stack: "postgres-redis", fault: "redis-restart" },
  { stack: "postgres-redlock", fault: "postgres-restart" },
];

/** A test entry whose store stops its own process inside the lock once armed (stall-in-lock-server.ts). */
const STALL_ENTRY = fileURLToPath(new URL("./stall-in-lock-server.js", import.meta.url));

/** A test entry that runs the CLI with a store that forgets idempotency keys (planted-bug-server.ts). */
export const PLANTED_BUG_ENTRY = fileURLToPath(new URL("./planted-bug-server.js", import.meta.url));

/** The lease of the sell-path lock in every run: a pause fault lasts three of them. */
const LEASE_MS = 1000;

export interface RunOptions {
  stack: StackName;
  fault: FaultName;
  /** Server instances behind the balancer (the first is the victim). */
  instances?: number;
  buyers?: number;
  seed?: number;
  /** Run the instances through this entry instead of the CLI (a planted bug). */
  entry?: string;
  log?: (line: string) => void;
}

/** How many times a pause fault stops the victim, at most, to catch it holding the lock. */
const PAUSE_ATTEMPTS = 10;

/** Whether a pause fault on this stack must end with the fence refusing the victim (pauseHoldingTheLock). */
export function fenceExpected(stack: StackName): boolean {
  // The single file commits a tick in the thread that stalled, before any timer can run: the fence alone
  // refuses it. A file per event may hand the parts to its commit threads, and a resumed PostgreSQL batch
  // awaits the database: either may first hear of the lost lease (LOCK_LOST), which refuses it as well.
  return stack === "sqlite-single";
}

/**
 * What shows that a paused victim held the lock when it was stopped, and that its write, late past its
 * lease, was refused rather than committed.
 */
export interface PauseEvidence {
  /** Stops it took (a stop between the victim's batches proves nothing, so the fault stops it again). */
  attempts: number;
  /** Keyed POSTs open on the victim at a stop, answered after it resumed with a 503 because its lease
   * was gone: refused by the fence (STALE_FENCE) or by its lost lease's signal (LOCK_LOST). Only a
   * batch under the lock when the victim stopped ends so. */
  fencedOut: number;
  leaseLost: number;
  /** The purchase another instance made on the same event while the victim was stopped: 201 when it took
   * the lock and raised the fence; null when no answer came. */
  takeoverStatus: number | null;
  /** Of the refused keys, those whose order (made by the client's retry) dates from before the resume:
   * a stale write that was committed after all. */
  staleCommitted: number;
}

/** What shows that the fault hit a sale under way. */
export interface FaultEvidence {
  /** Tickets left on the general-admission and seated events, read just before the fault. */
  availableAtFault: number;
  /** Keyed POSTs sent straight to the victim that were open when the fault began. */
  directInFlightAtFault: number;
  /** Of those, how many never got an answer from the victim (it died or stalled with them). */
  directUnansweredAtFault: number;
  /** Of those, how many the victim answered only after the fault ended (they waited in the stopped process). */
  directAnsweredAfterFault: number;
  /** Keyed POSTs the victim took and answered while the fault lasted (a slow instance still serves). */
  directAnsweredDuringFault: number;
  /** Answers of the victim after the fault that refused a write as unavailable (a lost lease, a stale fence). */
  victimUnavailableAfterFault: number;
  /** Sales (201 purchases and confirms) answered after the fault ended: the system recovered. */
  salesAfterFault: number;
  /** Sales answered while the fault lasted. */
  salesDuringFault: number;
  /** 503 answers and answers that never came, in the whole run. */
  unavailable: number;
  noAnswer: number;
  faultStartedAtMs: number;
  faultEndedAtMs: number;
  /** For a pause fault: that the victim held the lock and was fenced off. */
  pause: PauseEvidence | null;
}

export interface RunResult {
  stack: StackName;
  fault: FaultName;
  report: VerifierReport;
  evidence: FaultEvidence;
  records: number;
  durationMs: number;
}

interface Stack {
  /** Created to make the victim stop itself inside the lock at its next batch (pause fault only). */
  stallFile: string;
  balancer: SpawnedBalancer;
  instances: ServerProcess[];
  redis: RedisServer[];
  postgres: ThrowawayPostgres | null;
  stop(): Promise<void>;
}

async function startStack(options: RunOptions, log: (line: string) => void): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), `boxoffice-faults-${options.stack}-`));
  const redis: RedisServer[] = [];
  let postgres: ThrowawayPostgres | null = null;
  const instances: ServerProcess[] = [];
  let balancer: SpawnedBalancer | null = null;
  const stop = async (): Promise<void> => {
    for (const instance of instances) instance.kill("SIGCONT");
    await balancer?.stop();
    await Promise.all(instances.map((instance) => instance.stop(5000)));
    await Promise.all(redis.map((server) => server.kill()));
    await postgres?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const args = [
      "--lock-lease-ms",
      String(LEASE_MS),
      "--lock-wait-ms",
      "2000",
      "--sweep-interval-ms",
      "500",
    ];
    if (options.stack.startsWith("postgres")) {
      // PostgreSQL cannot listen on port 0: a free port from a range, tried from a random place.
      postgres = await startThrowawayPostgres(await freePortIn(21000, 29999));
      const servers = options.stack === "postgres-redlock" ? 3 : 1;
      for (let index = 0; index < servers; index++) {
        const server = new RedisServer(await freePort());
        await server.start();
        redis.push(server);
      }
      const lock = redis.map((server) => server.url).join(",");
      args.push("--store", postgres.url, "--lock", lock, "--pg-pool-size", "4");
    } else {
      args.push("--layout", options.stack === "sqlite-single" ? "single" : "per-event", "--lock", "file");
    }
    log(`# ${options.stack}: starting ${options.instances ?? 2} instances`);
    // One at a time: the first migrates a new database alone.
    const stallFile = join(dataDir, "stall-victim");
    for (let index = 0; index < (options.instances ?? 2); index++) {
      // The pause fault's victim (the first) runs through the stall entry, unless a planted bug is tried.
      const stalls = index === 0 && options.fault === "pause" && options.entry === undefined;
      instances.push(
        await ServerProcess.start({
          dataDir,
          instanceId: `i-${index + 1}`,
          layout: options.stack === "sqlite-single" ? "single" : "per-event",
          args,
          entry: stalls ? STALL_ENTRY : options.entry,
          env: stalls ? { BOXOFFICE_TEST_STALL_FILE: stallFile } : {},
          startTimeoutMs: 90_000,
        }),
      );
    }
    balancer = await spawnBalancer(
      [...instances.flatMap((instance) => ["--backend", instance.url]), ...["--health-interval-ms", "200"]],
      {},
      60_000,
    );
    return { stallFile, balancer, instances, redis, postgres, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function call(
  url: string,
  method: "GET" | "POST",
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(url, {
    method,
    headers: {
      authorization: `Bearer ${E2E_ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

async function available(baseUrl: string, eventIds: readonly string[]): Promise<number> {
  let total = 0;
  for (const id of eventIds)
    total += Number((await call(`${baseUrl}/v1/events/${id}`, "GET")).body.available);
  return total;
}

/** Waits until `ready()` or fails after `timeoutMs`, naming what it waited for. */
async function waitFor(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Injects the fault (a pause: pauseHoldingTheLock); resolves when it is over (the victim is dead, or resumed, or the server is back). */
async function inject(
  fault: Exclude<FaultName, "pause">,
  stack: Stack,
  log: (line: string) => void,
): Promise<void> {
  const victim = stack.instances[0]!;
  switch (fault) {
    case "kill":
      victim.kill("SIGKILL");
      await victim.exited;
      return;
    case "slow":
      // Alive but slow: stopped half of every 200 ms for 4 s.
      for (let slice = 0; slice < 20; slice++) {
        victim.kill("SIGSTOP");
        await sleep(100);
        victim.kill("SIGCONT");
        await sleep(100);
      }
      return;
    case "redis-restart": {
      // Lose the lock service (for Redlock, a majority of it) with all its keys, then bring it back empty.
      const down = stack.redis.slice(0, stack.redis.length === 1 ? 1 : 2);
      await Promise.all(down.map((server) => server.kill()));
      log(`# killed ${down.length} of ${stack.redis.length} Redis servers`);
      await sleep(1500);
      await Promise.all(down.map((server) => server.start()));
      return;
    }
    case "postgres-restart":
      // A crash (no checkpoint): what was committed must come back from the write-ahead log.
      await stack.postgres!.stopServer("immediate");
      await sleep(1000);
      await stack.postgres!.startServer();
      return;
  }
}

/** A 503's detail starts with the code of the error that refused the write (src/server/build-app.ts). */
function refusedBecause(record: ClientRecord): string | null {
  if (record.status !== 503) return null;
  const detail = (record.response as { detail?: unknown } | null)?.detail;
  return typeof detail === "string" ? (/^([A-Z_]+):/.exec(detail)?.[1] ?? null) : null;
}

/**
 * The pause fault: the victim stops itself (SIGSTOP) inside the lock at its next batch while keyed POSTs
 * are open on it (stall-in-lock-server.ts: the stop catches it holding the lock by construction, not by
 * luck). Once its lease is over, another instance buys on the same event (taking the lock and raising
 * the fence, unless the victim stopped inside a database transaction, which holds everyone off); SIGCONT
 * after three leases. Resumed, the stalled batch must be refused (503 STALE_FENCE or LOCK_LOST), never
 * committed. If that batch held none of the POSTs sent to the victim directly (the ones whose answers
 * the test reads; the balancer would retry a refused one elsewhere), the fault is made again, up to
 * PAUSE_ATTEMPTS times. On the single file the refusal must be the fence itself (STALE_FENCE, the
 * store's last line for a holder that did not notice it lost its lease: fenceExpected); elsewhere a
 * resumed batch may hear of its lost lease first (lock-pause.test.ts shows the fence there, with a
 * holder that does not listen). Returns when the last stop began and ended, and the evidence.
 */
async function pauseHoldingTheLock(
  stackName: StackName,
  stack: Stack,
  workload: FaultWorkload,
  log: (line: string) => void,
): Promise<{ startedAtMs: number; endedAtMs: number; evidence: PauseEvidence }> {
  const victim = stack.instances[0]!;
  let startedAtMs = 0;
  let fencedOut = 0;
  let leaseLost = 0;
  let staleCommitted = 0;
  for (let attempt = 1; ; attempt++) {
    await waitFor("a keyed POST open on the victim", () => workload.directInFlight >= 1, 30_000);
    // The victim stops itself at its next guarded batch, holding the lock (stall-in-lock-server.ts).
    rmSync(`${stack.stallFile}.stalled`, { force: true });
    writeFileSync(stack.stallFile, "");
    await waitFor(
      "the victim to stop inside the lock",
      () => existsSync(`${stack.stallFile}.stalled`),
      30_000,
    );
    const stoppedAtMs = Date.now();
    const openAtStop = workload.directInFlight;
    // The fault is the last stop, the one that caught the victim holding the lock.
    startedAtMs = stoppedAtMs;
    await sleep(LEASE_MS * 1.5);
    const takeover = workload.purchaseOn(stack.instances[1]!.url);
    await sleep(LEASE_MS * 1.5);
    victim.kill("SIGCONT");
    const resumedAtMs = Date.now();
    const takeoverStatus = (await takeover).status;
    const open = (): ClientRecord[] =>
      workload.directRecords.filter((r) => r.startedAtMs <= stoppedAtMs && r.endedAtMs >= stoppedAtMs);
    await waitFor(
      "the answers to the keyed POSTs open at the stop",
      () => open().length >= openAtStop,
      30_000,
    );
    const refused = open().filter(
      (r) => r.endedAtMs >= resumedAtMs && ["STALE_FENCE", "LOCK_LOST"].includes(refusedBecause(r) ?? ""),
    );
    const codes = refused.map(refusedBecause);
    const keys = new Set(refused.map((r) => r.idempotencyKey));
    const stale = workload.records.filter(
      (r) =>
        keys.has(r.idempotencyKey) &&
        r.status === 201 &&
        Date.parse((r.response as { createdAt: string }).createdAt) < resumedAtMs,
    ).length;
    log(
      `# pause ${attempt}: ${openAtStop} keyed POSTs open at the stop, refused on resuming: ` +
        `${codes.join(", ") || "none"}; the other instance's purchase meanwhile: ${takeoverStatus}`,
    );
    fencedOut += codes.filter((code) => code === "STALE_FENCE").length;
    leaseLost += codes.filter((code) => code === "LOCK_LOST").length;
    staleCommitted += stale;
    if (fencedOut > 0 || (!fenceExpected(stackName) && leaseLost > 0) || attempt === PAUSE_ATTEMPTS) {
      return {
        startedAtMs,
        endedAtMs: resumedAtMs,
        evidence: { attempts: attempt, fencedOut, leaseLost, takeoverStatus, staleCommitted },
      };
    }
    await sleep(300);
  }
}

const isSale = (record: ClientRecord): boolean =>
  record.status === 201 && (record.kind === "purchase" || record.kind === "confirm");

/** One run of the matrix. Throws if the stack cannot be started; the result says whether it held. */
export async function runFault(options: RunOptions): Promise<RunResult> {
  const log = options.log ?? (() => undefined);
  const startedAtMs = Date.now();
  const stack = await startStack(options, log);
  try {
    const base = stack.balancer.url;
    const general = await call(`${base}/v1/events`, "POST", {
      name: "Faults GA",
      capacity: 2000,
      maxPerOrder: 4,
      maxPerCustomer: 6,
    });
    const seated = await call(`${base}/v1/events`, "POST", {
      name: "Faults seated",
      seating: { sections: [{ name: "A", rows: 10, seatsPerRow: 20 }] },
      maxPerOrder: 4,
      maxPerCustomer: 4,
    });
    if (general.status !== 201 || seated.status !== 201) {
      throw new Error(`events not created: ${JSON.stringify([general, seated])}`);
    }
    const seats: string[] = [];
    for (let row = 1; row <= 10; row++) for (let seat = 1; seat <= 20; seat++) seats.push(`A-${row}-${seat}`);
    const eventIds = [String(general.body.id), String(seated.body.id)];
    const workload = new FaultWorkload({
      baseUrl: base,
      general: { id: eventIds[0]!, seats: null },
      seated: { id: eventIds[1]!, seats },
      customers: 60,
      buyers: options.buyers ?? 10,
      directBuyers: 4,
      victimUrl: stack.instances[0]!.url,
      abandonedHolds: 12,
      requestTimeoutMs: 8000,
      seed: options.seed ?? 1,
    });
    workload.start();

    // The fault comes once the sale is under way and keyed POSTs are open on the victim.
    await waitFor("40 sales", () => workload.sales >= 40, 60_000);
    const availableAtFault = await available(base, eventIds);
    await waitFor("3 keyed POSTs open on the victim", () => workload.directInFlight >= 3, 30_000);
    let faultStartedAtMs = Date.now();
    const openAtFault = workload.directInFlight;
    log(
      `# ${options.stack} × ${options.fault}: fault at ${workload.sales} sales, ${openAtFault} open on the victim`,
    );
    let pause: PauseEvidence | null = null;
    let faultEndedAtMs: number;
    if (options.fault === "pause") {
      const paused = await pauseHoldingTheLock(options.stack, stack, workload, log);
      faultStartedAtMs = paused.startedAtMs;
      faultEndedAtMs = paused.endedAtMs;
      pause = paused.evidence;
    } else {
      if (options.fault === "kill") {
        const victim = stack.instances[0]!;
        faultStartedAtMs = await freezeWithRequestsOpen(
          (signal) => victim.kill(signal),
          () => workload.directInFlight,
          { what: "the victim", log },
        );
      }
      const injected = inject(options.fault, stack, log);
      if (options.fault === "kill") workload.stopDirect();
      await injected;
      faultEndedAtMs = Date.now();
    }
    workload.stopDirect();
    // The sale goes on after the fault, then stops; the abandoned carts must have expired by the check.
    const salesAtEnd = workload.sales;
    await waitFor("20 sales after the fault", () => workload.sales >= salesAtEnd + 20, 60_000);
    await sleep(1000);
    await workload.stop();
    const lastExpiryMs = Math.max(0, ...workload.abandoned.values());
    if (lastExpiryMs > Date.now()) await sleep(lastExpiryMs - Date.now() + 1000);

    const survivors = options.fault === "kill" ? stack.instances.slice(1) : stack.instances;
    const report = await verify({
      baseUrl: base,
      adminToken: E2E_ADMIN_TOKEN,
      eventIds,
      records: workload.records,
      instanceUrls: survivors.map((instance) => instance.url),
    });
    const open = workload.directRecords.filter(
      (record) => record.startedAtMs <= faultStartedAtMs && record.endedAtMs >= faultStartedAtMs,
    );
    const evidence: FaultEvidence = {
      availableAtFault,
      directInFlightAtFault: open.length,
      directUnansweredAtFault: open.filter((record) => record.status === null || record.status >= 500).length,
      directAnsweredAfterFault: open.filter(
        (record) => record.status !== null && record.endedAtMs >= faultEndedAtMs,
      ).length,
      directAnsweredDuringFault: workload.directRecords.filter(
        (record) =>
          record.status !== null &&
          record.status < 500 &&
          record.startedAtMs >= faultStartedAtMs &&
          record.endedAtMs <= faultEndedAtMs,
      ).length,
      victimUnavailableAfterFault: workload.directRecords.filter(
        (record) => record.status === 503 && record.endedAtMs >= faultEndedAtMs,
      ).length,
      salesAfterFault: workload.records.filter((r) => isSale(r) && r.startedAtMs > faultEndedAtMs).length,
      salesDuringFault: workload.records.filter(
        (r) => isSale(r) && r.startedAtMs >= faultStartedAtMs && r.endedAtMs <= faultEndedAtMs,
      ).length,
      unavailable: workload.records.filter((record) => record.status === 503).length,
      noAnswer: workload.records.filter((record) => record.status === null).length,
      faultStartedAtMs,
      faultEndedAtMs,
      pause,
    };
    return {
      stack: options.stack,
      fault: options.fault,
      report,
      evidence,
      records: workload.records.length,
      durationMs: Date.now() - startedAtMs,
    };
  } finally {
    await stack.stop();
  }
}

/** One line of a run's outcome, for logs and docs. */
export function describeRun(result: RunResult): string {
  const failed = result.report.checks.filter((check) => !check.pass);
  const { counts } = result.report;
  const e = result.evidence;
  return (
    `${result.stack} × ${result.fault}: ${result.report.pass ? "PASS" : "FAIL"} in ${(result.durationMs / 1000).toFixed(0)} s — ` +
    `${result.records} requests, ${counts.ordersConfirmed} orders live, ${counts.ordersCancelled} cancelled, ` +
    `${counts.holdsExpired} holds expired, ${counts.replayed} keys in doubt replayed; at the fault ` +
    `${e.availableAtFault} tickets left, ${e.directInFlightAtFault} keyed POSTs open on the victim ` +
    `(${e.directUnansweredAtFault} unanswered by it); ${e.salesDuringFault} sales during, ` +
    `${e.salesAfterFault} after; ${e.unavailable} 503s, ${e.noAnswer} without answer` +
    (e.pause === null
      ? ""
      : `; stopped ${e.pause.attempts}× to catch it holding the lock, then ${e.pause.fencedOut} writes ` +
        `fenced out and ${e.pause.leaseLost} refused for a lost lease (${e.pause.staleCommitted} committed), ` +
        `the other instance's purchase meanwhile ${e.pause.takeoverStatus}`) +
    (failed.length > 0 ? `\n  ${failed.map((check) => `${check.name}: ${check.detail}`).join("\n  ")}` : "")
  );
}
