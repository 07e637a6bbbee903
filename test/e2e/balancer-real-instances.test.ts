/**
 * The balancer in front of real boxoffice instances (`boxoffice server`, sharing one SQLite data
 * directory, or one PostgreSQL schema): a sale through the balancer while an instance is killed with keyed purchases in flight on
 * it and tickets still on sale sells every ticket exactly once, the keyed purchases it took with it are
 * retried safely on the other instance, and the clients see only definite answers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool, request } from "undici";
import {
  spawnBalancer,
  spawnRealInstance,
  type RealInstance,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";

const TOKEN = "balancer-e2e-admin-token";

/** The stores behind the instances: the data directory's SQLite files, or a PostgreSQL schema of its own. */
const postgresSkipped = await postgresSkip();
const backends = [
  { name: "SQLite", skip: undefined, schema: null },
  { name: "PostgreSQL", skip: postgresSkipped, schema: freshSchemaName("lb_real") },
] as const;

// Both backends at the same time (each its own instances, balancer and data).
describe("balancer: real instances", { concurrency: true }, () => {
  for (const backend of backends)
    describe(
      `balancer: real instances on ${backend.name}, one killed during a sale`,
      { skip: backend.skip },
      () => {
        let dataDir: string;
        let instances: RealInstance[] = [];
        let balancer: SpawnedBalancer;
        let client: Pool;

        before(async () => {
          dataDir = mkdtempSync(join(tmpdir(), "boxoffice-lb-real-"));
          if (backend.schema === null)
            instances = await Promise.all(["s1", "s2"].map((id) => spawnRealInstance(id, dataDir, TOKEN)));
          else {
            // One after the other: the first migrates the new schema alone.
            const store = ["--store", `${TEST_POSTGRES_URL}?schema=${backend.schema}`];
            for (const id of ["s1", "s2"]) instances.push(await spawnRealInstance(id, dataDir, TOKEN, store));
          }
          balancer = await spawnBalancer(
            [
              ...instances.flatMap((instance) => ["--backend", instance.url]),
              ...["--health-interval-ms", "200"],
            ],
            { BOXOFFICE_ADMIN_TOKEN: TOKEN },
          );
          client = new Pool(balancer.url, { connections: 16 });
        });

        after(async () => {
          await client?.close();
          await balancer?.stop();
          await Promise.all(instances.map((instance) => instance.kill()));
          if (dataDir) rmSync(dataDir, { recursive: true, force: true });
          if (backend.schema !== null) await dropSchema(TEST_POSTGRES_URL, backend.schema);
        });

        it("sells every ticket exactly once and gives each key one order", async () => {
          const capacity = 120;
          const created = await client.request({
            path: "/v1/events",
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({ name: "Kill test", capacity }),
          });
          const createdText = await created.body.text();
          assert.equal(created.statusCode, 201, createdText);
          const eventId = (JSON.parse(createdText) as { id: string }).id;

          const orderByKey = new Map<string, string>();
          const servedBy = new Set<string>();
          let soldOut = 0;
          let next = 0;
          let killed = false;
          let activeAtKill = 0;
          let ordersAtKill = 0;
          let ordersAfterKill = 0;
          /** Reads how many requests the balancer has open on the instance right now (/_lb/backends). */
          const activeOn = async (url: string): Promise<number> => {
            const answer = await request(`${balancer.url}/_lb/backends`, {
              headers: { authorization: `Bearer ${TOKEN}` },
            });
            const figures = (await answer.body.json()) as { backends: { url: string; active: number }[] };
            return figures.backends.find((backend) => backend.url === url)?.active ?? 0;
          };
          /**
           * Kills s2 once the sale is under way, both instances took part, and the balancer has purchases open
           * on s2 (every request of the sale is a keyed POST), so that the kill takes keyed POSTs with it.
           */
          const killer = async (): Promise<void> => {
            while (!killed && soldOut === 0) {
              if (next >= 40 && servedBy.has("s2") && (await activeOn(instances[1]!.url)) >= 2) {
                activeAtKill = await activeOn(instances[1]!.url);
                if (activeAtKill === 0) continue;
                ordersAtKill = orderByKey.size;
                killed = true;
                void instances[1]!.kill();
                return;
              }
              await sleep(5);
            }
          };
          /** One purchase, repeated with the same key until it has a definite answer (bounded). */
          const buy = async (key: string): Promise<void> => {
            for (let attempt = 0; attempt < 20; attempt++) {
              const response = await client.request({
                path: `/v1/events/${eventId}/orders`,
                method: "POST",
                headers: { "content-type": "application/json", "idempotency-key": key },
                body: JSON.stringify({ customerId: `c-${key}`, quantity: 1 }),
              });
              const body = (await response.body.json()) as { id?: string; code?: string };
              if (response.headers["x-served-by"] !== undefined)
                servedBy.add(String(response.headers["x-served-by"]));
              if (response.statusCode === 201) {
                const previous = orderByKey.get(key);
                if (previous !== undefined)
                  assert.equal(body.id, previous, "a repeated key got another order");
                orderByKey.set(key, body.id!);
                if (killed) ordersAfterKill++;
                return;
              }
              if (response.statusCode === 409 && body.code === "sold_out") {
                soldOut++;
                return;
              }
              // "in use" (the first try is still settling) or 503: try the same key again, which is always safe.
              assert.ok(
                (response.statusCode === 409 && body.code === "idempotency_key_in_use") ||
                  response.statusCode === 503,
                `${response.statusCode} from ${String(response.headers["x-served-by"] ?? "the balancer")}: ` +
                  JSON.stringify(body),
              );
              await sleep(50);
            }
            assert.fail(`key ${key} never got a definite answer`);
          };
          await Promise.all([
            killer(),
            ...Array.from({ length: 12 }, async () => {
              while (soldOut === 0 && next < capacity * 2) await buy(`k-${next++}`);
            }),
          ]);
          assert.ok(killed, "the instance was killed during the sale");
          assert.ok(activeAtKill >= 1, "keyed purchases were in flight on the instance when it was killed");
          assert.ok(ordersAtKill < capacity, `tickets were still on sale at the kill (${ordersAtKill} sold)`);
          assert.ok(ordersAfterKill > 0, "the sale went on after the kill");
          const figures = (await (
            await request(`${balancer.url}/_lb/backends`, { headers: { authorization: `Bearer ${TOKEN}` } })
          ).body.json()) as { backends: { url: string; retries: number }[] };
          const retriedFromKilled =
            figures.backends.find((backend) => backend.url === instances[1]!.url)?.retries ?? 0;
          console.log(
            `# ${orderByKey.size} orders, ${soldOut} sold out; ${activeAtKill} keyed POSTs open on s2 at the kill, ` +
              `${retriedFromKilled} requests sent again elsewhere after failing there`,
          );
          // The keyed POSTs open on s2 failed there with it and were sent again to s1 (their keys answered once,
          // as the checks below show).
          assert.ok(
            retriedFromKilled >= 1,
            "a request that failed on the killed instance was retried elsewhere",
          );
          assert.deepEqual([...servedBy].sort(), ["s1", "s2"]);

          const orders = new Set(orderByKey.values());
          assert.equal(orders.size, orderByKey.size, "two keys got the same order");
          const state = (await (
            await client.request({ path: `/v1/events/${eventId}`, method: "GET" })
          ).body.json()) as {
            sold: number;
            available: number;
          };
          assert.equal(state.sold, capacity, "sold exactly the capacity");
          assert.equal(state.available, 0);
          assert.equal(orders.size, capacity, "every sold ticket has its one order, known to its buyer");
        });
      },
    );
});
