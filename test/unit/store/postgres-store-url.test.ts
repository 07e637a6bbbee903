import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  isPostgresUrl,
  postgresStoreConfigFromUrl,
  POSTGRES_STORE_DEFAULTS,
  redactPostgresUrl,
} from "../../../src/store/postgres/postgres-store-url.js";

describe("postgres store URL", () => {
  it("takes the tuning parameters out of the URL and leaves the rest to the driver", () => {
    const config = postgresStoreConfigFromUrl(
      "postgres://app:secret@db:6432/tickets?schema=prod&pool=20&statement_timeout_ms=800&connect_timeout_ms=300&sslmode=require",
    );
    assert.deepEqual(config, {
      kind: "postgres",
      url: "postgres://app:secret@db:6432/tickets?schema=prod&sslmode=require",
      poolSize: 20,
      statementTimeoutMs: 800,
      connectTimeoutMs: 300,
    });
  });

  it("uses the defaults and refuses nonsense", () => {
    const config = postgresStoreConfigFromUrl("postgresql://127.0.0.1/test");
    assert.equal(config.poolSize, POSTGRES_STORE_DEFAULTS.poolSize);
    assert.equal(config.statementTimeoutMs, POSTGRES_STORE_DEFAULTS.statementTimeoutMs);
    assert.throws(() => postgresStoreConfigFromUrl("postgres://h/db?pool=0"), { code: "INVALID_CONFIG" });
    assert.throws(() => postgresStoreConfigFromUrl("postgres://h/db?pool=abc"), { code: "INVALID_CONFIG" });
    assert.throws(() => postgresStoreConfigFromUrl("sqlite:./data"), { code: "INVALID_CONFIG" });
    assert.equal(isPostgresUrl("POSTGRES://h/db"), true);
    assert.equal(isPostgresUrl("./data"), false);
  });

  it("hides the password when the URL is shown", () => {
    assert.equal(
      redactPostgresUrl("postgres://app:s3cret@db:5432/tickets?schema=prod"),
      "postgres://app:***@db:5432/tickets?schema=prod",
    );
    assert.equal(redactPostgresUrl("postgres://app@db/tickets"), "postgres://app@db/tickets");
  });
});
