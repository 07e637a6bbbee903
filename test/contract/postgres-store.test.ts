/** The store contract against PostgreSQL on 127.0.0.1:5432, in a schema of its own dropped afterwards. */
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { describePostgresSlowPath } from "./postgres-poison-contract.js";
import { describeStoreContract } from "./store-contract.js";
import { describeWebhookContract } from "./webhook-contract.js";

const skip = await postgresSkip();
describeStoreContract(
  "postgres",
  async () => {
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
    return {
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
  },
  skip === undefined ? {} : { skip },
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
