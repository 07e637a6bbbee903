/**
 * `boxoffice lb --placement event`: every request under one event's path goes to one instance (so its
 * sales batch in one place), other requests by least connections, and an instance that dies gives its
 * events to the others.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Pool } from "undici";
import {
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";

const EVENTS = Array.from({ length: 12 }, (_, i) => `evt_${String(i).padStart(26, "0")}`);

describe("balancer: --placement event", () => {
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;
  let client: Pool;

  before(async () => {
    backends = await Promise.all(["a", "b", "c"].map((id) => spawnBackend({ id, delayMs: 2 })));
    balancer = await spawnBalancer([
      ...backends.flatMap((backend) => ["--backend", backend.url]),
      "--placement",
      "event",
      "--health-interval-ms",
      "200",
    ]);
    client = new Pool(balancer.url, { connections: 16 });
  });

  after(async () => {
    await client?.close();
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
  });

  const servedBy = async (path: string, method: "GET" | "POST" = "GET"): Promise<string> => {
    const response = await client.request({
      path,
      method,
      ...(method === "POST" ? { body: "{}", headers: { "content-type": "application/json" } } : {}),
    });
    await response.body.dump();
    return String(response.headers["x-served-by"]);
  };

  /** Which instance served each event's requests (the event's page, its orders, a query), concurrently. */
  const placements = async (): Promise<Map<string, Set<string>>> => {
    const seen = new Map<string, Set<string>>(EVENTS.map((id) => [id, new Set<string>()]));
    await Promise.all(
      EVENTS.flatMap((id) =>
        [
          `/v1/events/${id}`,
          `/v1/events/${id}/orders`,
          `/v1/events/${id}?page=2`,
          `/v1/events/${id}/holds`,
        ].map(async (path, i) => seen.get(id)!.add(await servedBy(path, i % 2 === 1 ? "POST" : "GET"))),
      ),
    );
    return seen;
  };

  it("sends every request of one event to one instance, and the events to several instances", async () => {
    const seen = await placements();
    for (const [id, instances] of seen) assert.equal(instances.size, 1, `${id} went to ${[...instances]}`);
    const used = new Set([...seen.values()].flatMap((instances) => [...instances]));
    assert.ok(used.size >= 2, `12 events all on ${[...used]}`);
  });

  it("places requests that name no event by least connections over every instance", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await servedBy("/work"));
    assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
  });

  it("gives a dead instance's events to the others, and keeps the rest where they were", async () => {
    const before = await placements();
    const victim = backends.find((backend) =>
      [...before.values()].some((instances) => instances.has(backend.id)),
    )!;
    await victim.kill();
    const after = await placements();
    for (const [id, instances] of after) {
      assert.equal(instances.size, 1, `${id} went to ${[...instances]}`);
      const [was] = before.get(id)!;
      if (was === victim.id) assert.notEqual([...instances][0], victim.id);
      else assert.deepEqual([...instances], [was], `${id} moved though ${was} stayed up`);
    }
  });
});
