/**
 * A data directory with a SQLite store, and seller processes (lock-store-child.ts) that open the same
 * store with their own lock provider: the sell path of several instances, without HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LockConfig } from "../../src/lock/create-lock-provider.js";
import type { StoreConfig } from "../../src/store/create-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ForkedChild } from "./forked-child.js";
import type { SellerMessage, SellerRequest } from "./lock-store-child.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "./redis-keys.js";
import { redisSkip, TEST_REDIS_URL } from "./services.js";

const SELLER = fileURLToPath(new URL("./lock-store-child.js", import.meta.url));
export type Seller = ForkedChild<SellerRequest, SellerMessage>;
type SqliteStoreConfig = Extract<StoreConfig, { kind: "sqlite" }>;

export class SellerFixture {
  readonly dir: string;
  readonly store: SqliteStore;
  readonly #storeConfig: SqliteStoreConfig;
  readonly #lock: LockConfig;
  readonly #sellers: Seller[] = [];

  private constructor(dir: string, storeConfig: SqliteStoreConfig, lock: LockConfig) {
    this.dir = dir;
    this.#storeConfig = storeConfig;
    this.#lock = lock;
    this.store = new SqliteStore(storeConfig);
  }

  /** A fresh directory and store; `lock` gets the directory (for the file lock's database). */
  static async open(lock: (dir: string) => LockConfig): Promise<SellerFixture> {
    const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-sellers-"));
    const storeConfig: SqliteStoreConfig = {
      kind: "sqlite",
      dir,
      layout: "per-event",
      durability: "normal",
      maxOpenEvents: 8,
    };
    const fixture = new SellerFixture(dir, storeConfig, lock(dir));
    await fixture.store.init();
    return fixture;
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
    await this.store.close();
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
