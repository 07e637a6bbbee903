/**
 * Locks on one Redis server, or a Redlock quorum over several independent ones (kind "redlock"), with
 * our own Lua scripts rather than the `redlock` package: we need fencing tokens issued by the lock
 * servers in the same atomic step as the SET NX PX, and three distinct failures (busy, unavailable,
 * lost) where node-redlock reports one ExecutionError for all of them.
 *
 * Redlock: an acquisition counts when a majority of the servers granted it and time is left on the
 * lease: validity = lease − elapsed (monotonic clock) − drift. The fencing token is the largest one the
 * majority issued, written back to each of them before the work starts, so that any later majority —
 * which shares at least one server with this one — issues a larger token. Every server's tokens are also
 * at least its clock in µs, so a server that lost its data (a minority) cannot drag the token back
 * by more than the clock skew between servers; the store refuses such a write rather than overselling.
 *
 * withLocks takes several keys with one script call per server (acquire-many.lua: every free key of the
 * list, each with its own token), renews them with one (extend-many.lua) and releases them with one
 * (release-many.lua); with Redlock the quorum is counted per key, and the fences a quorum disagrees
 * on are raised with one more call per server (raise-fences.lua). A single Redis is the quorum of one.
 * The keys of one call must live on one server: not for Redis Cluster without hash tags.
 *
 * Waiters learn of a release at once: release.lua and release-many.lua PUBLISH the released lock keys on
 * the channel `<keyPrefix>released`, and each provider keeps one subscriber connection per server
 * (ioredis duplicate()) that wakes this process's waiters of exactly those keys (withLock's
 * acquireWithin, and the sell path's retry of a busy event through onReleased); its own releases, named
 * by its id in the message, it does not tell. It is a hint: the
 * capped backoff stays as the fallback, a missed message (the subscriber reconnecting) costs a waiter
 * only that backoff, and each (re)subscription wakes every waiter once, since releases may have been
 * missed meanwhile. The subscriber never decides anything: a Redis that is down still answers every
 * lock call with LockUnavailableError through the command connections.
 *
 * Nothing is kept for a key nobody uses: the lock key lives for a lease, the fence counter for
 * `keyIdleMs` after its last acquisition; the clock floor keeps tokens growing after it expired.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { WriteGuard } from "../../domain/write-guard.js";
import {
  holdManyWhile,
  withLease,
  type AcquireAttempt,
  type HeldLease,
  type HeldLeases,
  type RetryOptions,
} from "../lease.js";
import { LockBusyError, LockUnavailableError } from "../../domain/lock-errors.js";
import {
  checkLockKeys,
  KEY_IDLE_MS,
  type LockOptions,
  type LockProvider,
  type ManyLockOptions,
  type ManyLockWork,
} from "../lock-provider.js";
import { LocalQueue } from "../local-queue.js";
import { ReleaseListeners } from "../release-listeners.js";
import { LuaScript } from "./lua-script.js";

const ACQUIRE = new LuaScript("acquire.lua");
const RAISE_FENCE = new LuaScript("raise-fence.lua");
const EXTEND = new LuaScript("extend.lua");
const RELEASE = new LuaScript("release.lua");
const ACQUIRE_MANY = new LuaScript("acquire-many.lua");
const RAISE_FENCES = new LuaScript("raise-fences.lua");
const EXTEND_MANY = new LuaScript("extend-many.lua");
const RELEASE_MANY = new LuaScript("release-many.lua");

export interface RedisLockOptions {
  /** One URL (a single Redis) or several independent servers (Redlock): `redis://host:port`. */
  urls: readonly string[];
  /** Prefix of every key this lock writes; tests use their own. */
  keyPrefix?: string;
  /** A server that has not answered a command within this time counts as down for that command. */
  commandTimeoutMs?: number;
  /** init() waits at most this long for a quorum of servers to connect. */
  connectTimeoutMs?: number;
  /** Clock drift allowance as a fraction of the lease (Redlock's drift factor); 2 ms are added. */
  driftFactor?: number;
  /** A key's fence counter expires after this long unused (default KEY_IDLE_MS; tests shorten it). */
  keyIdleMs?: number;
  /**
   * Publish releases and wake local waiters from them (default true). Off, waiters only back off: the
   * lost-notification case, for tests and A/B measurement.
   */
  releaseNotifications?: boolean;
  /** A waiter's first backoff after a busy answer (default 1 ms); tests lengthen it. */
  firstRetryMs?: number;
  /** The cap of a waiter's backoff between tries (default 10 ms); tests lengthen it. */
  maxRetryMs?: number;
}

interface Grant {
  client: Redis;
  fence: number;
}

export class RedisLock implements LockProvider {
  readonly kind: "redis" | "redlock";
  readonly #urls: readonly string[];
  readonly #keyPrefix: string;
  readonly #commandTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #driftFactor: number;
  readonly #quorum: number;
  readonly #keyIdleMs: number;
  #clients: Redis[] = [];
  /** One subscriber connection per server, for the release channel (empty without notifications). */
  #subscribers: Redis[] = [];
  #closed = false;
  readonly #queue = new LocalQueue();
  readonly #listeners = new ReleaseListeners();
  /** The release channel, or "" when releases are not published. */
  readonly #channel: string;
  readonly #retry: RetryOptions;
  /**
   * Names this provider's releases on the channel: its own are not told to its waiters (the local queue
   * and the sell path's next tick already follow them), so a try racing the other instance is not wasted.
   */
  readonly #id = randomUUID();

  constructor(options: RedisLockOptions) {
    if (options.urls.length === 0) throw new LockUnavailableError("redis lock needs at least one server");
    this.#urls = options.urls;
    this.kind = options.urls.length === 1 ? "redis" : "redlock";
    this.#keyPrefix = options.keyPrefix ?? "boxoffice:";
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 500;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#driftFactor = options.driftFactor ?? 0.01;
    this.#quorum = Math.floor(options.urls.length / 2) + 1;
    this.#keyIdleMs = options.keyIdleMs ?? KEY_IDLE_MS;
    const notify = options.releaseNotifications ?? true;
    this.#channel = notify ? `${this.#keyPrefix}released` : "";
    this.#retry = {
      firstRetryMs: options.firstRetryMs,
      maxRetryMs: options.maxRetryMs,
      onReleased: notify ? (key, listener) => this.#listeners.add(key, listener) : undefined,
    };
  }

  /** The number of servers that must agree. */
  get quorum(): number {
    return this.#quorum;
  }

  /**
   * Connects to every server and waits (at most connectTimeoutMs) for a quorum. It does not fail when
   * the servers are down: the instance starts, /ready reports the lock as unavailable, every lock call
   * answers LockUnavailableError, and the clients keep reconnecting in the background.
   */
  async init(): Promise<void> {
    const { Redis } = await import("ioredis");
    this.#clients = this.#urls.map((url) => {
      const client = new Redis(url, {
        // Fail at once while disconnected, instead of queueing sales until the server returns.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        commandTimeout: this.#commandTimeoutMs,
        connectTimeout: this.#connectTimeoutMs,
        retryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
      });
      // Connection errors reach the callers as failed commands (LockUnavailableError) and on /ready.
      client.on("error", () => undefined);
      return client;
    });
    if (this.#channel !== "") this.#subscribers = this.#clients.map((client) => this.#subscribe(client));
    await new Promise<void>((resolve) => {
      let ready = this.#clients.filter((client) => client.status === "ready").length;
      const finish = (): void => {
        clearTimeout(timer);
        for (const client of this.#clients) client.off("ready", onReady);
        resolve();
      };
      const onReady = (): void => {
        if (++ready >= this.#quorum) finish();
      };
      const timer = setTimeout(finish, this.#connectTimeoutMs);
      for (const client of this.#clients) client.on("ready", onReady);
      if (ready >= this.#quorum) finish();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const client of [...this.#clients, ...this.#subscribers]) client.disconnect();
    this.#clients = [];
    this.#subscribers = [];
    // Waiters try once more and meet "closed" (LockUnavailableError) instead of sleeping on.
    this.#listeners.notifyAll();
  }

  onReleased(key: string, listener: () => void): () => void {
    if (this.#channel === "") return () => undefined;
    return this.#listeners.add(key, listener);
  }

  /**
   * A subscriber connection to `client`'s server for the release channel. It subscribes at every
   * "ready" (ioredis's own resubscription is off, so that each (re)subscription is seen here) and then
   * wakes every waiter once: releases published while it was away were missed.
   */
  #subscribe(client: Redis): Redis {
    const subscriber = client.duplicate({ autoResubscribe: false });
    const lockPrefix = `${this.#keyPrefix}lock:`;
    subscriber.on("error", () => undefined);
    subscriber.on("ready", () => {
      subscriber.subscribe(this.#channel).then(
        () => this.#listeners.notifyAll(),
        // Not subscribed (the server went away again): the next "ready" tries again; waiters back off.
        () => undefined,
      );
    });
    subscriber.on("message", (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const [origin, ...lockKeys] = message.split("\n");
      if (origin === this.#id) return;
      for (const lockKey of lockKeys) {
        if (lockKey.startsWith(lockPrefix)) this.#listeners.notify(lockKey.slice(lockPrefix.length));
      }
    });
    return subscriber;
  }

  async ping(): Promise<void> {
    const answers = await Promise.allSettled(this.#live().map((client) => client.ping()));
    const up = answers.filter((answer) => answer.status === "fulfilled").length;
    if (up < this.#quorum) {
      throw new LockUnavailableError(
        `${up} of ${this.#urls.length} lock servers answer; ${this.#quorum} needed`,
      );
    }
  }

  async withLock<T>(key: string, options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    return withLease(
      this.#queue,
      key,
      options,
      () => this.#tryAcquire(key, options.leaseMs),
      work,
      this.#retry,
    );
  }

  async withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    checkLockKeys(keys);
    const { leases, refused } = await this.#tryAcquireMany(keys, options.leaseMs);
    return holdManyWhile(options.leaseMs, leases, refused, work);
  }

  /**
   * One try at every key, one script call per server: the keys a quorum granted in time are held (each
   * with the largest token its quorum issued, written back where the servers disagree), the others are
   * refused as busy and given back wherever they were granted.
   */
  async #tryAcquireMany(
    keys: readonly string[],
    leaseMs: number,
  ): Promise<{ leases: HeldLeases; refused: Map<string, Error> }> {
    const clients = this.#live();
    const pairs = keys.flatMap((key) => this.#keys(key));
    const token = randomUUID();
    const startedMs = performance.now();
    const validUntilMs = startedMs + leaseMs - this.#driftMs(leaseMs);
    const answers = await Promise.allSettled(
      clients.map((client) => ACQUIRE_MANY.run(client, pairs, [token, leaseMs, this.#keyIdleMs])),
    );
    const failures: unknown[] = [];
    const grants: Grant[][] = keys.map(() => []);
    answers.forEach((answer, server) => {
      if (answer.status === "rejected") return void failures.push(answer.reason);
      const fences = answer.value as unknown[];
      keys.forEach((_, i) => {
        const fence = Number(fences[i]);
        if (fence > 0) grants[i]!.push({ client: clients[server]!, fence });
      });
    });
    if (failures.length > clients.length - this.#quorum) {
      await this.#releaseManyEverywhere(keys, token);
      throw new LockUnavailableError(
        `${failures.length} of ${clients.length} lock servers failed; ${this.#quorum} needed`,
        failures[0],
      );
    }

    const chosen = new Map<string, number>();
    keys.forEach((key, i) => {
      const granted = grants[i]!;
      if (granted.length >= this.#quorum) chosen.set(key, Math.max(...granted.map((grant) => grant.fence)));
    });
    await this.#raiseFences(keys, grants, chosen, token);
    const fences = new Map<string, number | null>();
    const refused = new Map<string, Error>();
    const inTime = performance.now() < validUntilMs;
    for (const key of keys) {
      const fence = chosen.get(key);
      if (fence !== undefined && inTime) fences.set(key, fence);
      else refused.set(key, new LockBusyError(key, 0));
    }
    // Give back what a minority granted, so that others need not wait for it to run out.
    const partial = keys.filter((key, i) => refused.has(key) && grants[i]!.length > 0);
    if (partial.length > 0) await this.#releaseManyEverywhere(partial, token);
    return { leases: this.#leases(fences, token, leaseMs, validUntilMs), refused };
  }

  /**
   * Writes each chosen token back to the servers that granted its key with a smaller one (one call per
   * server); a key that then stands on fewer than a quorum of servers is taken out of `chosen`.
   */
  async #raiseFences(
    keys: readonly string[],
    grants: Grant[][],
    chosen: Map<string, number>,
    token: string,
  ): Promise<void> {
    const toRaise = keys.filter((key, i) => {
      const fence = chosen.get(key);
      return fence !== undefined && grants[i]!.some((grant) => grant.fence !== fence);
    });
    if (toRaise.length === 0) return;
    const clients = this.#live();
    const pairs = toRaise.flatMap((key) => this.#keys(key));
    const tokens = toRaise.map((key) => String(chosen.get(key)));
    const answers = await Promise.allSettled(
      clients.map((client) => RAISE_FENCES.run(client, pairs, [token, this.#keyIdleMs, ...tokens])),
    );
    toRaise.forEach((key, i) => {
      const raised = answers.filter(
        (answer) => answer.status === "fulfilled" && Number((answer.value as unknown[])[i]) === 1,
      );
      if (raised.length < this.#quorum) chosen.delete(key);
    });
  }

  #leases(
    fences: ReadonlyMap<string, number | null>,
    token: string,
    leaseMs: number,
    validUntilMs: number,
  ): HeldLeases {
    return {
      fences,
      validUntilMs,
      extend: async (keys) => {
        const clients = this.#live();
        const startedMs = performance.now();
        const lockKeys = keys.map((key) => this.#keys(key)[0]);
        const answers = await Promise.allSettled(
          clients.map((client) => EXTEND_MANY.run(client, lockKeys, [token, leaseMs])),
        );
        if (answers.every((answer) => answer.status === "rejected")) {
          throw new LockUnavailableError("no lock server answered the renewal", answers[0]?.reason);
        }
        const renewed: string[] = [];
        const lost: string[] = [];
        keys.forEach((key, i) => {
          let yes = 0;
          let gone = 0;
          for (const answer of answers) {
            if (answer.status !== "fulfilled") continue;
            if (Number((answer.value as unknown[])[i]) === 1) yes++;
            else gone++;
          }
          if (yes >= this.#quorum) renewed.push(key);
          // Enough servers said "not yours" that no quorum can hold it for us any more.
          else if (clients.length - gone < this.#quorum) lost.push(key);
        });
        return { validUntilMs: startedMs + leaseMs - this.#driftMs(leaseMs), renewed, lost };
      },
      release: (keys) => this.#releaseManyEverywhere(keys, token),
    };
  }

  async #releaseManyEverywhere(keys: readonly string[], token: string): Promise<void> {
    if (this.#clients.length === 0 || keys.length === 0) return;
    const lockKeys = keys.map((key) => this.#keys(key)[0]);
    await Promise.allSettled(
      this.#clients.map((client) => RELEASE_MANY.run(client, lockKeys, [token, this.#channel, this.#id])),
    );
  }

  #live(): Redis[] {
    if (this.#clients.length === 0) {
      throw new LockUnavailableError(this.#closed ? "redis lock is closed" : "redis lock is not initialised");
    }
    return this.#clients;
  }

  #keys(key: string): [lockKey: string, fenceKey: string] {
    return [`${this.#keyPrefix}lock:${key}`, `${this.#keyPrefix}fence:${key}`];
  }

  #driftMs(leaseMs: number): number {
    return Math.floor(leaseMs * this.#driftFactor) + 2;
  }

  async #tryAcquire(key: string, leaseMs: number): Promise<AcquireAttempt> {
    const clients = this.#live();
    const keys = this.#keys(key);
    const token = randomUUID();
    const startedMs = performance.now();
    const validUntilMs = startedMs + leaseMs - this.#driftMs(leaseMs);
    const answers = await Promise.allSettled(
      clients.map((client) => ACQUIRE.run(client, keys, [token, leaseMs, this.#keyIdleMs])),
    );
    const grants: Grant[] = [];
    const failures: unknown[] = [];
    answers.forEach((answer, index) => {
      if (answer.status === "rejected") failures.push(answer.reason);
      else if (Number(answer.value) > 0)
        grants.push({ client: clients[index]!, fence: Number(answer.value) });
    });

    if (grants.length >= this.#quorum) {
      const fence = Math.max(...grants.map((grant) => grant.fence));
      const agreed =
        grants.every((grant) => grant.fence === fence) ||
        (await this.#raiseFence(grants, keys, token, fence));
      if (agreed && performance.now() < validUntilMs) {
        return this.#lease(keys, token, fence, leaseMs, validUntilMs);
      }
    }
    // No quorum, or it came too late: give back what we got so that others need not wait for it.
    await this.#releaseEverywhere(keys, token);
    if (failures.length > clients.length - this.#quorum) {
      throw new LockUnavailableError(
        `${failures.length} of ${clients.length} lock servers failed; ${this.#quorum} needed`,
        failures[0],
      );
    }
    return "busy";
  }

  /** Writes the chosen token back to the granting servers; true when a quorum of them took it. */
  async #raiseFence(grants: Grant[], keys: string[], token: string, fence: number): Promise<boolean> {
    const answers = await Promise.allSettled(
      grants.map((grant) => RAISE_FENCE.run(grant.client, keys, [token, String(fence), this.#keyIdleMs])),
    );
    const raised = answers.filter((answer) => answer.status === "fulfilled" && Number(answer.value) === 1);
    return raised.length >= this.#quorum;
  }

  #lease(keys: string[], token: string, fence: number, leaseMs: number, validUntilMs: number): HeldLease {
    const [lockKey] = keys;
    return {
      fence,
      validUntilMs,
      extend: async () => {
        const clients = this.#live();
        const startedMs = performance.now();
        const answers = await Promise.allSettled(
          clients.map((client) => EXTEND.run(client, [lockKey!], [token, leaseMs])),
        );
        const renewed = answers.filter(
          (answer) => answer.status === "fulfilled" && Number(answer.value) === 1,
        );
        const gone = answers.filter((answer) => answer.status === "fulfilled" && Number(answer.value) !== 1);
        if (renewed.length >= this.#quorum) return startedMs + leaseMs - this.#driftMs(leaseMs);
        // Enough servers said "not yours" that no quorum can hold it for us any more.
        if (clients.length - gone.length < this.#quorum) return null;
        throw new LockUnavailableError(`lease on "${lockKey}" could not be renewed on a quorum`);
      },
      release: () => this.#releaseEverywhere(keys, token),
    };
  }

  async #releaseEverywhere(keys: string[], token: string): Promise<void> {
    const [lockKey] = keys;
    if (this.#clients.length === 0) return;
    await Promise.allSettled(
      this.#clients.map((client) => RELEASE.run(client, [lockKey!], [token, this.#channel, this.#id])),
    );
  }
}
