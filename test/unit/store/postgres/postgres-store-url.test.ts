import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isPostgresUrl, redactPostgresUrl } from "../../../../src/store/postgres/postgres-store-url.js";

describe("postgres store URL", () => {
  it("tells a PostgreSQL URL from other store settings", () => {
    assert.equal(isPostgresUrl("postgres://h/db"), true);
    assert.equal(isPostgresUrl("POSTGRESQL://h/db"), true);
    assert.equal(isPostgresUrl("sqlite"), false);
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
