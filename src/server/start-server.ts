/**
 * Starts one instance: store, lock, sell path, hold sweeper and the HTTP app, in that order, and stops
 * them in the reverse order (stop accepting, finish in-flight, then close the store and the lock). It knows
 * the backends only through their factories (createStore, createLockProvider) and tagged configs.
 */
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { ServerConfig } from "../config/server-config.js";
import { redactPostgresUrl } from "../config/store-url.js";
import { createLockProvider } from "../lock/create-lock-provider.js";
import type { LockProvider } from "../lock/lock-provider.js";
import type { Logger } from "../log/logger.js";
import { HoldSweeper } from "../sales/hold-sweeper.js";
import { SellPath } from "../sales/sell-path.js";
import { createStore } from "../store/create-store.js";
import type { StoreConfig } from "../store/create-store.js";
import type { Store } from "../store/store.js";
import { buildApp } from "./build-app.js";
import { ServerMetrics } from "./server-metrics.js";

export interface RunningServer {
  /** "http://host:port", with the port actually bound. */
  url: string;
  app: FastifyInstance;
  /** Stops accepting, finishes in-flight requests, closes everything. Idempotent. */
  close(): Promise<void>;
}

/** The store configuration a server config asks for. */
export function storeConfigOf(config: ServerConfig): StoreConfig {
  if (config.store !== "sqlite") {
    // The setting's parser let only "sqlite" and postgres:// URLs through.
    return {
      kind: "postgres",
      url: config.store,
      poolSize: config.pgPoolSize,
      statementTimeoutMs: config.pgStatementTimeoutMs,
      migrations: config.migrate ? "apply" : "check",
    };
  }
  return {
    kind: "sqlite",
    dir: config.dataDir,
    layout: config.layout,
    durability: config.durability,
    maxOpenEvents: config.maxOpenEvents,
    migrations: config.migrate ? "apply" : "check",
  };
}

/** Closes whatever was opened, newest first, ignoring failures of the ones after the first. */
async function closeAll(closers: (() => Promise<void>)[], logger: Logger): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      logger.error({ err: error }, "close failed");
    }
  }
}

/**
 * @param adminToken the token the admin calls must bear (config/admin-token.ts resolves it).
 * @param log the process's logger (log/logger.ts), also Fastify's.
 */
export async function startServer(
  config: ServerConfig,
  adminToken: string,
  log: Logger,
): Promise<RunningServer> {
  const closers: (() => Promise<void>)[] = [];
  try {
    const store: Store = await createStore(storeConfigOf(config));
    await store.init();
    closers.push(() => store.close());
    const lock: LockProvider = await createLockProvider(config.lock, {
      dataDir: config.dataDir,
      storeUrl: config.store === "sqlite" ? null : config.store,
    });
    await lock.init();
    closers.push(() => lock.close());

    const metrics = new ServerMetrics(config.instanceId);
    store.onBookkeepingError = (error, what) => {
      metrics.storeBookkeepingFailures.inc();
      log.warn({ err: error }, `store bookkeeping failed (${what}); the request it belongs to succeeded`);
    };
    const sellPath = new SellPath({
      store,
      lock,
      lockScope: config.lockScope,
      lockLeaseMs: config.lockLeaseMs,
      lockWaitMs: config.lockWaitMs,
      maxBatch: config.maxBatch,
      maxQueuePerEvent: config.maxQueuePerEvent,
      maxQueueTotal: config.maxQueueTotal,
      observer: metrics.sellPathObserver(),
    });
    closers.push(() => sellPath.close());
    const sweeper = new HoldSweeper({
      store,
      intervalMs: config.sweepIntervalMs,
      limit: 500,
      pruneIntervalMs: 10 * 60 * 1000,
      onError: (error) => log.warn({ err: error }, "hold sweep failed"),
      onExpired: (count) => metrics.holdsExpired.inc(count),
    });
    sweeper.init();
    closers.push(() => sweeper.close());

    const app = await buildApp({
      store,
      lock,
      sellPath,
      metrics,
      instanceId: config.instanceId,
      adminToken,
      logger: log,
    });
    closers.push(() => closeApp(app, config.shutdownTimeoutMs));
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    log.info(
      {
        url,
        store: config.store === "sqlite" ? "sqlite" : redactPostgresUrl(config.store),
        layout: config.layout,
        lock: lock.kind,
      },
      "boxoffice server ready",
    );

    let closing: Promise<void> | null = null;
    return {
      url,
      app,
      close: () => (closing ??= closeAll(closers, log)),
    };
  } catch (error) {
    await closeAll(closers, log);
    throw error;
  }
}

/** app.close() waits for in-flight requests; past the deadline, open connections are cut. */
async function closeApp(app: FastifyInstance, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), timeoutMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
