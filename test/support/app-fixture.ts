/**
 * An app for inject() tests: the real SQLite store in a temp directory, a lock provider of the test's
 * choosing (NoneLock by default), the real sell path and metrics.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import type { BuyerAuthConfig } from "../../src/config/buyer-auth.js";
import type { Event } from "../../src/domain/event.js";
import type { LockProvider } from "../../src/lock/lock-provider.js";
import { NoneLock } from "../../src/lock/none/none-lock.js";
import { SellPath } from "../../src/sales/sell-path.js";
import type { SellPathOptions } from "../../src/sales/sell-path.js";
import { buildApp } from "../../src/server/build-app.js";
import { ServerMetrics } from "../../src/server/server-metrics.js";
import { createStore } from "../../src/store/create-store.js";
import type { Store } from "../../src/store/store.js";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const SIGNING_SECRET = "test-signing-secret-0123456789-0123456789";
export const INSTANCE_ID = "unit-1";

export interface AppFixture {
  app: FastifyInstance;
  store: Store;
  sellPath: SellPath;
  /** POST /v1/events as admin; returns the created event. */
  createEvent(body: Record<string, unknown>): Promise<Event>;
  close(): Promise<void>;
}

export async function startAppFixture(
  options: {
    lock?: LockProvider;
    layout?: "single" | "per-event";
    sellPath?: Partial<SellPathOptions>;
    buyerAuth?: BuyerAuthConfig;
  } = {},
): Promise<AppFixture> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-app-"));
  const store = await createStore({
    kind: "sqlite",
    dir,
    layout: options.layout ?? "per-event",
    durability: "normal",
    maxOpenEvents: 16,
  });
  await store.init();
  const lock = options.lock ?? new NoneLock();
  await lock.init();
  const metrics = new ServerMetrics(INSTANCE_ID, { defaultMetrics: false });
  const sellPath = new SellPath({
    store,
    lock,
    lockScope: "event",
    lockLeaseMs: 5000,
    lockWaitMs: 1000,
    maxBatch: 64,
    maxQueuePerEvent: 1000,
    maxQueueTotal: 1000,
    observer: metrics.sellPathObserver(),
    ...options.sellPath,
  });
  const app = await buildApp({
    store,
    lock,
    sellPath,
    metrics,
    instanceId: INSTANCE_ID,
    adminToken: ADMIN_TOKEN,
    signingSecret: SIGNING_SECRET,
    readyTimeoutMs: 500,
    ...(options.buyerAuth ? { buyerAuth: options.buyerAuth } : {}),
  });
  await app.ready();
  let closed = false;
  return {
    app,
    store,
    sellPath,
    async createEvent(body) {
      const response = await app.inject({
        method: "POST",
        url: "/v1/events",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        payload: body,
      });
      if (response.statusCode !== 201)
        throw new Error(`create event: ${response.statusCode} ${response.body}`);
      return response.json<Event>();
    },
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await sellPath.close();
      await lock.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The problem code of an answer, checking that it is problem+json and carries X-Served-By. */
export function problemCode(response: LightMyRequestResponse): string {
  const type = String(response.headers["content-type"]);
  if (!type.startsWith("application/problem+json")) {
    throw new Error(`expected problem+json, got ${type}: ${response.body}`);
  }
  if (response.headers["x-served-by"] !== INSTANCE_ID) throw new Error("X-Served-By missing");
  const body = response.json<{ code: string; status: number }>();
  if (body.status !== response.statusCode) throw new Error(`status ${body.status} != ${response.statusCode}`);
  return body.code;
}
