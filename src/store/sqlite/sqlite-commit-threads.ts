/**
 * The commit threads of the per-event SQLite layout. One transaction cannot span files, so the parts of
 * a multi-event commit (Store.executeMany) must each commit in their own file; done one after another in
 * the main thread, their fsyncs queue behind each other and the event loop blocks for all of them. Here
 * each thread (sqlite-commit-worker.ts) owns the connections of a shard of the event files (by a hash of
 * the event id), so the shards' commits, and their fsyncs, run at the same time while the main thread
 * goes on serving requests. Within a shard, parts commit one after another.
 *
 * Only plain data crosses: the event's plan, the commands, the guard's lock key and fence, and a shared
 * flag that the main thread sets when the guard's signal aborts (the thread reads it right before the
 * writes and right before the commit, as the store reads the signal). Errors come back as their code and
 * message; failed bookkeeping (a hint the catalog did not take) comes back to be retried by the store.
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { BoxofficeError } from "../../domain/errors.js";
import type { EventPlan } from "../../domain/event.js";
import type { Command, Outcome } from "../../domain/sale.js";
import { StoreUnavailableError } from "../store-errors.js";
import type { SqliteDurability } from "./sqlite-store-config.js";

/** What a commit thread needs to open its files the way the store does. */
export interface CommitThreadConfig {
  dir: string;
  durability: SqliteDurability;
  migrations: "apply" | "check";
  /** Event files one thread keeps open at most. */
  maxOpenEvents: number;
}

/** One event's part, as sent to its thread. */
export interface WirePart {
  eventId: string;
  /** Null as sent: the plan this thread was last sent for the event (SqliteCommitThreads sends each once). */
  plan: EventPlan | null;
  commands: readonly Command[];
  guard: { lockKey: string; fence: number | null } | null;
  /**
   * Where the guard's abort flag is: `flags` is an Int32Array's buffer shared by the call's parts, and
   * slot `index` is 1 once this part's lock grant (its guard's signal) aborted. Null without a guard.
   */
  aborted: { flags: SharedArrayBuffer; index: number } | null;
  /** The earliest hold expiry of the part, for the hold-deadline hint; null when it makes no hold. */
  hintMs: number | null;
}

export interface CommitRequest {
  id: number;
  nowMs: number;
  /** The thread forgets the plans it was sent before this request's (the sender forgot them too). */
  forgetPlans: boolean;
  parts: WirePart[];
}

/** An error as it crosses threads: enough to answer the buyer as the store would have. */
export interface WireError {
  name: string;
  message: string;
  code: string | null;
  retryable: boolean;
}

export type WireResult = { ok: true; outcomes: Outcome[] } | { ok: false; error: WireError };

/** A hint the thread could not write (error) or chose not to wait for (no error): the store retries it. */
export interface WireBookkeeping {
  kind: "hold" | "outbox";
  eventId: string;
  earliestMs: number;
  error: WireError | null;
  what: string;
}

export interface CommitReply {
  id: number;
  results: WireResult[];
  bookkeeping: WireBookkeeping[];
}

/** The part's answer from its thread, or the error that lost the thread. */
export type ThreadResult = { ok: true; outcomes: Outcome[] } | { ok: false; error: Error };

/** Turns an error that crossed threads back into one that the HTTP layer answers the same way. */
export function fromWire(error: WireError): Error {
  const rebuilt =
    error.code === null
      ? new Error(error.message)
      : new BoxofficeError(error.code, error.message, { retryable: error.retryable });
  rebuilt.name = error.name;
  return rebuilt;
}

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (reply: CommitReply) => void; reject: (error: unknown) => void }>;
  /**
   * The plan object last sent to this thread for each event: a part whose plan is that same object goes
   * without it (structured-cloning the plan was 7 % of a sale's instructions over 50 events). The thread
   * keeps what it was sent in the same map, until a request tells it to forget them all.
   */
  plans: Map<string, EventPlan>;
}

/** Plans remembered per thread before both sides forget them all and start again. */
const MAX_REMEMBERED_PLANS = 4096;

/** FNV-1a: the same event always goes to the same thread, so one connection per file per process. */
function shardOf(eventId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < eventId.length; i++) {
    hash ^= eventId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

export class SqliteCommitThreads {
  readonly #config: CommitThreadConfig;
  /** Started when first needed; a thread that died is started again at the next commit. */
  readonly #threads: (Thread | null)[];
  readonly #rememberedPlans: number;
  #nextId = 0;
  #closed = false;

  /** `rememberedPlans`: how many events' plans a thread keeps before it and this side forget them all. */
  constructor(config: CommitThreadConfig, count: number, rememberedPlans = MAX_REMEMBERED_PLANS) {
    if (count < 1) throw new RangeError("at least one commit thread");
    this.#config = config;
    this.#rememberedPlans = rememberedPlans;
    this.#threads = Array.from({ length: count }, () => null);
  }

  /**
   * Commits the parts, each in its event's thread, the threads in parallel. Resolves with one result per
   * part, in order, and the bookkeeping the threads could not do; a thread that dies fails its parts.
   */
  async commit(
    parts: readonly WirePart[],
    nowMs: number,
  ): Promise<{ results: ThreadResult[]; bookkeeping: WireBookkeeping[] }> {
    if (this.#closed) throw new StoreUnavailableError("store closed");
    const byShard = new Map<number, number[]>();
    parts.forEach((part, i) => {
      const shard = shardOf(part.eventId, this.#threads.length);
      const indexes = byShard.get(shard);
      if (indexes) indexes.push(i);
      else byShard.set(shard, [i]);
    });
    const results: ThreadResult[] = new Array(parts.length);
    const bookkeeping: WireBookkeeping[] = [];
    await Promise.all(
      [...byShard].map(async ([shard, indexes]) => {
        try {
          const reply = await this.#send(
            shard,
            nowMs,
            indexes.map((i) => parts[i] as WirePart),
          );
          indexes.forEach((index, j) => {
            const result = reply.results[j];
            results[index] =
              result === undefined
                ? { ok: false, error: new StoreUnavailableError("commit thread gave no answer") }
                : result.ok
                  ? result
                  : { ok: false, error: fromWire(result.error) };
          });
          bookkeeping.push(...reply.bookkeeping);
        } catch (error) {
          const lost = new StoreUnavailableError("commit thread failed", error);
          for (const index of indexes) results[index] = { ok: false, error: lost };
        }
      }),
    );
    return { results, bookkeeping };
  }

  /** Stops every thread once it has answered what it was sent; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#threads.map(async (thread, i) => {
        if (thread === null) return;
        this.#threads[i] = null;
        const exited = once(thread.worker, "exit");
        thread.worker.ref();
        thread.worker.postMessage("close");
        await exited;
      }),
    );
  }

  #send(shard: number, nowMs: number, parts: readonly WirePart[]): Promise<CommitReply> {
    const thread = this.#thread(shard);
    const forgetPlans = thread.plans.size >= this.#rememberedPlans;
    if (forgetPlans) thread.plans.clear();
    const request: CommitRequest = {
      id: this.#nextId++,
      nowMs,
      forgetPlans,
      parts: parts.map((part) =>
        part.plan !== null && thread.plans.get(part.eventId) === part.plan ? { ...part, plan: null } : part,
      ),
    };
    return new Promise<CommitReply>((resolve, reject) => {
      thread.pending.set(request.id, { resolve, reject });
      // Keeps the process alive only while a commit is out.
      thread.worker.ref();
      try {
        thread.worker.postMessage(request);
      } catch (error) {
        // Nothing was sent: what the thread was sent before stands.
        thread.pending.delete(request.id);
        reject(error);
        return;
      }
      for (const part of request.parts) if (part.plan !== null) thread.plans.set(part.eventId, part.plan);
    });
  }

  #thread(shard: number): Thread {
    const existing = this.#threads[shard];
    if (existing) return existing;
    const worker = new Worker(new URL("./sqlite-commit-worker.js", import.meta.url), {
      workerData: {
        ...this.#config,
        maxOpenEvents: Math.max(1, Math.ceil(this.#config.maxOpenEvents / this.#threads.length)),
      } satisfies CommitThreadConfig,
    });
    const thread: Thread = { worker, pending: new Map(), plans: new Map() };
    const fail = (error: unknown) => {
      if (this.#threads[shard] === thread) this.#threads[shard] = null;
      for (const { reject } of thread.pending.values()) reject(error);
      thread.pending.clear();
    };
    worker.on("message", (reply: CommitReply) => {
      const waiting = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      waiting?.resolve(reply);
    });
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new StoreUnavailableError(`commit thread exited with code ${code}`)));
    worker.unref();
    this.#threads[shard] = thread;
    return thread;
  }
}
