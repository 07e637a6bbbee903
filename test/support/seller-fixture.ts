/**
 * A data directory with a SQLite store (or a PostgreSQL schema), and seller processes (lock-store-child.ts) that open the same
 * store with their own lock provider: the sell path of several instances, without HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LockConfig } from "../../src/lock/create-lock-provider.js";
import type { StoreConfig } from "../../src/store/create-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { ForkedChild } from "./forked-child.js";
import { createTestPostgresStore } from "./postgres-test-store.js";
import type { SellerMessage, SellerRequest } from "./lock-store-child.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "./redis-keys.js";
import { redisSkip, TEST_REDIS_URL } from "./services.js";

const SELLER = fileURLToPath(new URL("./lock-store-child.js", import.meta.url));
export type Seller = ForkedChild<SellerRequest, SellerMessage>;
type SqliteStoreConfig = Extract<StoreConfig, { kind: "sqlite" }>;

export class SellerFixture {
  readonly dir: string;
  readonly store: Store;
  readonly #storeConfig: StoreConfig;
  readonly #lock: LockConfig;
  readonly #sellers: Seller[] = [];
  readonly #dropStore: () => Promise<void>;

  private constructor(
    dir: string,
    storeConfig: StoreConfig,
    store: Store,
    lock: LockConfig,
    dropStore: () => Promise<void>,
  ) {
    this.dir = dir;
    this.#storeConfig = storeConfig;
    this.store = store;
    this.#lock = lock;
    this.#dropStore = dropStore;
  }

  /**
   * A fresh directory and store: SQLite files in the directory, or with `store: "postgres"` a schema of
   * its own on the test server. `lock` gets the directory (for the file lock's database).
   */
  static async open(
    lock: (dir: string) => LockConfig,
    options: { store?: "sqlite" | "postgres" } = {},
  ): Promise<SellerFixture> {
    const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-sellers-"));
    if (options.store === "postgres") {
      const postgres = await createTestPostgresStore("sellers", { poolSize: 2 });
      const storeConfig: StoreConfig = {
        kind: "postgres",
        url: postgres.url,
        schema: postgres.schema,
        poolSize: 2,
        statementTimeoutMs: 5000,
      };
      return new SellerFixture(dir, storeConfig, postgres.store, lock(dir), () => postgres.cleanup());
    }
    const storeConfig: SqliteStoreConfig = {
      kind: "sqlite",
      dir,
      layout: "per-event",
      durability: "normal",
      maxOpenEvents: 8,
    };
    const store = new SqliteStore(storeConfig);
    await store.init();
    return new SellerFixture(dir, storeConfig, store, lock(dir), () => store.close());
  }

  async startSeller(): Promise<Seller> {
    const seller = await ForkedChild.start<SellerRequest, SellerMessage>(SELLER, {
      lock: { config: this.#lock, context: {} },
      store: this.#storeConfig,
    });
    this.#sellers.push(seller);
    return seller;
  }

  async startSellers(count: number): Promise<Seller[]> {
    return Promise.all(Array.from({ length: count }, () => this.startSeller()));
  }

  async close(): Promise<void> {
    await Promise.all(this.#sellers.map((seller) => seller.stop()));
    await this.#dropStore();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The leasing providers a seller test runs against: the file lock, and the shared Redis (own prefix). */
export async function leasingProviders(area: string): Promise<
  {
    name: string;
    skip: string | undefined;
    lock: (dir: string) => LockConfig;
    cleanup: () => Promise<void>;
  }[]
> {
  const keyPrefix = testKeyPrefix(area);
  return [
    {
      name: "file",
      skip: undefined,
      lock: (dir) => ({ kind: "file", path: join(dir, "locks.sqlite") }),
      cleanup: async () => {},
    },
    {
      name: "redis",
      skip: await redisSkip(),
      lock: () => ({ kind: "redis", urls: [TEST_REDIS_URL], keyPrefix }),
      cleanup: () => deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix),
    },
  ];
}
