/**
 * Starts one instance: store, lock, sell path, hold sweeper and the HTTP app, in that order, and stops
 * them in the reverse order (stop accepting, finish in-flight, then close the store and the lock). It knows
 * the backends only through their factories (createStore, createLockProvider) and tagged configs.
 */
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { resolveBuyerAuth } from "../config/buyer-auth.js";
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
import { startTracing, type Tracing } from "../telemetry/tracing.js";
import {
  ADMISSION_INTERVAL_MS,
  ADMISSION_LOOK_AHEAD_MS,
  AdmissionTicker,
} from "../waiting-room/admission-ticker.js";
import { RoomDirectory } from "../waiting-room/room-directory.js";
import { buildApp } from "./build-app.js";
import { GracefulDrain } from "./graceful-drain.js";
import { ServerMetrics } from "./server-metrics.js";

/** What an instance must share with every other instance; see config/admin-token.ts and signing-secret.ts. */
export interface ServerSecrets {
  adminToken: string;
  signingSecret: string;
}

export interface RunningServer {
  /** "http://host:port", with the port actually bound. */
  url: string;
  app: FastifyInstance;
  /** With `--admin-port`: the admin listener's "http://host:port" (admin calls, /metrics). */
  adminUrl: string | undefined;
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
    commitThreads: config.commitThreads,
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
 * @param secrets the token the admin calls must bear and the signing secret (config/admin-token.ts and
 *   config/signing-secret.ts resolve them).
 * @param log the process's logger (log/logger.ts), also Fastify's.
 */
export async function startServer(
  config: ServerConfig,
  secrets: ServerSecrets,
  log: Logger,
): Promise<RunningServer> {
  const closers: (() => Promise<void>)[] = [];
  // Before anything opens: a key file that cannot be read or used stops the instance at once.
  const buyerAuth = await resolveBuyerAuth(config);
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
    const admitter = new AdmissionTicker({
      waitingRoom: store.waitingRoom,
      intervalMs: ADMISSION_INTERVAL_MS,
      lookAheadMs: ADMISSION_LOOK_AHEAD_MS,
      onAdmitted: (admissions) => {
        for (const { eventId, admitted } of admissions)
          metrics.waitingRoomAdmitted.inc({ event: eventId }, admitted);
      },
      onError: (error) => log.warn({ err: error }, "waiting room admission pass failed"),
    });
    admitter.init();
    closers.push(() => admitter.close());
    metrics.watchWaitingRooms(() => store.waitingRoom.figures());

    metrics.watchWebhookBacklog(() => store.webhooks.pendingDeliveries());

    let tracing: Tracing | undefined;
    if (config.otelEndpoint !== undefined) {
      const started = await startTracing(config.otelEndpoint, "boxoffice-instance");
      tracing = started;
      closers.push(() => started.close());
    }
    const appOptions = {
      tracing,
      store,
      lock,
      sellPath,
      metrics,
      instanceId: config.instanceId,
      adminToken: secrets.adminToken,
      signingSecret: secrets.signingSecret,
      buyerAuth,
      logger: log,
      admitNow: () => admitter.passNow(),
      roomDirectory: new RoomDirectory(
        store.waitingRoom,
        (eventId) => store.getEvent(eventId),
        config.waitingRoomCacheMs,
      ),
    };
    let adminUrl: string | undefined;
    if (config.adminPort !== undefined) {
      const adminApp = await buildApp({ ...appOptions, surface: "admin" });
      const adminDrain = new GracefulDrain(adminApp.server);
      closers.push(() => closeApp(adminApp, adminDrain, config.shutdownTimeoutMs));
      await adminApp.listen({ port: config.adminPort, host: config.adminHost });
      adminUrl = urlOf(adminApp);
    }
    const app = await buildApp({
      ...appOptions,
      surface: config.adminPort === undefined ? "all" : "public",
    });
    const drain = new GracefulDrain(app.server);
    closers.push(() => closeApp(app, drain, config.shutdownTimeoutMs));
    await app.listen({ port: config.port, host: config.host });
    const url = urlOf(app);
    log.info(
      {
        url,
        ...(adminUrl === undefined ? {} : { adminUrl }),
        store: config.store === "sqlite" ? "sqlite" : redactPostgresUrl(config.store),
        layout: config.layout,
        lock: lock.kind,
      },
      "boxoffice server ready",
    );

    // Webhooks: a background relay (the sell path only inserts outbox rows in its own transactions),
    // loaded after the instance is ready, so that its HTTP client does not delay the start.
    if (config.webhookConcurrency > 0) {
      const relay = startWebhookRelay(config, store, metrics, log);
      closers.push(async () => (await relay)?.());
    }

    let closing: Promise<void> | null = null;
    return {
      url,
      app,
      adminUrl,
      close: () => (closing ??= closeAll(closers, log)),
    };
  } catch (error) {
    await closeAll(closers, log);
    throw error;
  }
}

/** "http://host:port" of a listening app. */
function urlOf(app: FastifyInstance): string {
  const address = app.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Starts the webhook relay; resolves to its closer, or null (logged) when it could not start. */
async function startWebhookRelay(
  config: ServerConfig,
  store: Store,
  metrics: ServerMetrics,
  log: Logger,
): Promise<(() => Promise<void>) | null> {
  try {
    const [{ WebhookRelay }, { WebhookSender }] = await Promise.all([
      import("../webhooks/webhook-relay.js"),
      import("../webhooks/webhook-sender.js"),
    ]);
    const sender = new WebhookSender({
      timeoutMs: config.webhookTimeoutMs,
      userAgent: "boxoffice-webhooks/1",
      connectionsPerOrigin: Math.min(config.webhookConcurrency, 16),
    });
    const relay = new WebhookRelay({
      store: store.webhooks,
      sender,
      owner: config.instanceId,
      intervalMs: config.webhookRelayIntervalMs,
      concurrency: config.webhookConcurrency,
      retry: {
        baseMs: config.webhookRetryBaseMs,
        maxMs: config.webhookRetryMaxMs,
        windowMs: config.webhookRetryHours * 3_600_000,
      },
      retentionMs: config.webhookRetentionDays * 86_400_000,
      observer: {
        attempted: (result) => metrics.webhookAttempts.inc({ result }),
        failed: (error, what) => log.warn({ err: error }, `webhook relay could not ${what}`),
      },
    });
    relay.init();
    return async () => {
      await relay.close();
      await sender.close();
    };
  } catch (error) {
    log.error({ err: error }, "the webhook relay did not start; this instance delivers no webhooks");
    return null;
  }
}

/** Answers every request already sent (see graceful-drain.ts), then closes the app's hooks. */
async function closeApp(app: FastifyInstance, drain: GracefulDrain, timeoutMs: number): Promise<void> {
  await drain.drain(timeoutMs);
  await app.close();
}
