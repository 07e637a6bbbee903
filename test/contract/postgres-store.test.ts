/** The store contract against PostgreSQL on 127.0.0.1:5432, in a schema of its own dropped afterwards. */
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { describePostgresSlowPath } from "./postgres-poison-contract.js";
import type { CommitBreaker } from "./execute-many-contract.js";
import { describeExecuteManyContract } from "./execute-many-contract.js";
import type { StoreFixture } from "./store-contract.js";
import { describeStoreContract } from "./store-contract.js";
import { describeWebhookContract } from "./webhook-contract.js";

const skip = await postgresSkip();
/** The schema of each fixture the contract factory made (for the commit breaker). */
const schemaOfFixture = new WeakMap<StoreFixture, string>();

async function contractFixture(): Promise<StoreFixture> {
  const schema = freshSchemaName("contract");
  const open = async () => {
    const store = new PostgresStore({
      url: TEST_POSTGRES_URL,
      schema,
      poolSize: 4,
      statementTimeoutMs: 5000,
    });
    await store.init();
    return store;
  };
  const store = await open();
  const others: PostgresStore[] = [];
  const fixture: StoreFixture = {
    store,
    async openAnother() {
      const another = await open();
      others.push(another);
      return another;
    },
    async cleanup() {
      await Promise.all([store, ...others].map((s) => s.close()));
      await dropSchema(TEST_POSTGRES_URL, schema);
    },
  };
  schemaOfFixture.set(fixture, schema);
  return fixture;
}

describeStoreContract("postgres", contractFixture, skip === undefined ? {} : { skip });

/**
 * Makes COMMIT itself fail: a deferred constraint trigger, checked at commit, refuses any transaction
 * that wrote an order for the breaker's customer (with SQLSTATE 40001, as a commit can fail).
 */
function commitBreaker(fixture: StoreFixture): CommitBreaker {
  const schema = pg.escapeIdentifier(schemaOfFixture.get(fixture) ?? "");
  const customerId = "commit-breaker";
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    customerId,
    install: () =>
      run(`
        CREATE FUNCTION ${schema}.break_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.customer_id = '${customerId}' THEN
            RAISE EXCEPTION 'commit broken on purpose' USING ERRCODE = '40001';
          END IF;
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER break_commit AFTER INSERT ON ${schema}.orders
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${schema}.break_commit();`),
    remove: () =>
      run(`DROP TRIGGER break_commit ON ${schema}.orders; DROP FUNCTION ${schema}.break_commit();`),
  };
}

describeExecuteManyContract(
  "postgres",
  contractFixture,
  skip === undefined ? { commitBreaker } : { skip, commitBreaker },
);

describeWebhookContract(
  "postgres",
  async () => {
    const schema = freshSchemaName("webhooks");
    const stores: PostgresStore[] = [];
    const open = async () => {
      const store = new PostgresStore({
        url: TEST_POSTGRES_URL,
        schema,
        poolSize: 4,
        statementTimeoutMs: 5000,
      });
      await store.init();
      stores.push(store);
      return store;
    };
    const store = await open();
    return {
      store,
      openAnother: open,
      async cleanup() {
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(TEST_POSTGRES_URL, schema);
      },
    };
  },
  skip === undefined ? {} : { skip },
);

describePostgresSlowPath(
  "direct",
  async () => ({ url: TEST_POSTGRES_URL, close: async () => undefined }),
  skip === undefined ? {} : { skip },
);
