/** The lock contract against every provider, on real files, a real PostgreSQL and real Redis servers. */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { describeLockContract } from "./lock-contract.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { startRedisServers } from "../support/redis-servers.js";
import { postgresSkip, redisSkip, TEST_POSTGRES_URL, TEST_REDIS_URL } from "../support/services.js";

/** Another owner on every server holds `lockKey` for a minute. */
async function takeOverOnRedis(urls: string[], lockKey: string): Promise<void> {
  await Promise.all(
    urls.map(async (url) => {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await client.set(lockKey, "thief", "PX", 60_000);
      } finally {
        client.disconnect();
      }
    }),
  );
}

describeLockContract("file", { excludes: true, leases: true, fences: true }, async () => {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-file-lock-"));
  const path = join(dir, "locks.sqlite");
  return {
    config: { kind: "file", path },
    context: {},
    postgresUrl: null,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    takeOver: async (key) => {
      const db = new Database(path);
      try {
        db.pragma("busy_timeout = 1000");
        // Another owner, with a lease far past this test (expiry is on the host's monotonic clock, ms).
        db.prepare("UPDATE locks SET owner = 'thief', expires_at = expires_at + 60000 WHERE key = ?").run(
          key,
        );
      } finally {
        db.close();
      }
    },
  };
});

describeLockContract(
  "redis",
  { skip: await redisSkip(), excludes: true, leases: true, fences: true },
  async () => {
    const keyPrefix = testKeyPrefix("lock-contract");
    return {
      config: { kind: "redis", urls: [TEST_REDIS_URL], keyPrefix },
      context: {},
      postgresUrl: null,
      cleanup: () => deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix),
      takeOver: (key) => takeOverOnRedis([TEST_REDIS_URL], `${keyPrefix}lock:${key}`),
    };
  },
);

describeLockContract("redlock (3 servers)", { excludes: true, leases: true, fences: true }, async () => {
  const servers = await startRedisServers(16380, 3);
  return {
    config: { kind: "redis", urls: servers.map((server) => server.url), keyPrefix: "contract:" },
    context: {},
    postgresUrl: null,
    cleanup: async () => {
      await Promise.all(servers.map((server) => server.kill()));
    },
    takeOver: (key) =>
      takeOverOnRedis(
        servers.map((server) => server.url),
        `contract:lock:${key}`,
      ),
  };
});

describeLockContract(
  "postgres",
  { skip: await postgresSkip(), excludes: true, leases: false, fences: false },
  async () => ({
    config: { kind: "postgres", url: TEST_POSTGRES_URL },
    context: {},
    postgresUrl: TEST_POSTGRES_URL,
    cleanup: async () => {},
  }),
);

describeLockContract("none", { excludes: false, leases: false, fences: false }, async () => ({
  config: { kind: "none" },
  context: {},
  postgresUrl: null,
  cleanup: async () => {},
}));
