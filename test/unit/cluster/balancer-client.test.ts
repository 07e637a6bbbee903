/**
 * The supervisor's client of the balancer's runtime API, against a real `boxoffice lb` process: an
 * instance the balancer already lists (added by hand) is adopted, not an error that would take the
 * supervisor down.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { BalancerClient } from "../../../src/cluster/balancer-client.js";
import { spawnBalancer } from "../../support/backend-fixture.js";

const TOKEN = "balancer-client-test-token-0123456789";

describe("BalancerClient", () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  it("adopts a backend the balancer already lists under the same URL", async () => {
    const balancer = await spawnBalancer([], { BOXOFFICE_ADMIN_TOKEN: TOKEN });
    stops.push(balancer.stop);
    const client = new BalancerClient(balancer.url, TOKEN);
    const url = "http://127.0.0.1:9";
    const first = await client.add(url);
    assert.equal(await client.add(url), first, "a second add of the same URL returns the listed id");
    assert.deepEqual(
      (await client.backends()).filter((b) => b.url === url).map((b) => b.id),
      [first],
      "listed once",
    );
    await assert.rejects(
      new BalancerClient(balancer.url, "wrong-token-0123456789").add("http://127.0.0.1:10"),
      /401/,
      "any other refusal is still an error",
    );
  });
});
