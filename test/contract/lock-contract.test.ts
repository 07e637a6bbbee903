/** The lock contract against every provider, on real files, a real PostgreSQL and real Redis servers. */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { describeLockContract } from "./lock-contract.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { startRedisServers } from "../support/redis-servers.js";
import { postgresSkip, redisSkip, TEST_POSTGRES_URL, TEST_REDIS_URL } from "../support/services.js";

describeLockContract("file", { excludes: true, leases: true, fences: true }, async () => {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-file-lock-"));
  return {
    config: { kind: "file", path: join(dir, "locks.sqlite") },
    context: {},
    postgresUrl: null,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
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
