/**
 * Makes docs/screenshots/dashboard.png: a real cluster started as `boxoffice up` starts it (three
 * instances), two events (one with a waiting room), a few seconds of purchases through the balancer, and
 * the dashboard signed in, in headless Chromium. Run after `npm run build`:
 * `node dist/bench/dashboard-screenshot.js [out.png]`.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../src/domain/event.js";
import { freePort } from "../test/support/backend-fixture.js";
import { ClusterProcess, stopAllClusters } from "../test/support/cluster-process.js";
import { launchChromium } from "../test/support/headless-chromium.js";
import { HttpClient } from "../test/support/http-client.js";
import { E2E_ADMIN_TOKEN } from "../test/support/server-process.js";

const out = process.argv[2] ?? join("docs", "screenshots", "dashboard.png");
const http = new HttpClient(16);
const dir = mkdtempSync(join(tmpdir(), "boxoffice-screenshot-"));

async function createEvent(cluster: ClusterProcess, body: object): Promise<Event> {
  for (let attempt = 0; ; attempt++) {
    const answer = await http.call<Event>(cluster.url, "/v1/events", { body, admin: true });
    if (answer.status === 201) return answer.body;
    if (attempt > 50) throw new Error(`could not create an event: ${answer.text}`);
    await sleep(200);
  }
}

/** Buys one or two tickets at a time, from a few buyers at once, until `stop` says so. */
async function buy(cluster: ClusterProcess, eventId: string, stop: () => boolean): Promise<void> {
  let sequence = 0;
  await Promise.all(
    Array.from({ length: 4 }, async (_, worker) => {
      while (!stop()) {
        const key = `shot-${worker}-${sequence++}`;
        await http.call(cluster.url, `/v1/events/${eventId}/orders`, {
          body: { customerId: key, quantity: 1 + (sequence % 2) },
          headers: { "idempotency-key": key },
        });
        await sleep(50);
      }
    }),
  );
}

const port = await freePort();
const instancePortBase = String(20_000 + Math.floor(Math.random() * 30_000));
const cluster = await ClusterProcess.start(dir, port, [
  "--instances",
  "3",
  "--instance-port-base",
  instancePortBase,
]);
const browser = await launchChromium();
try {
  const ticketTypes = [{ id: "standard", name: "Standard", price: 4500 }];
  const night = await createEvent(cluster, { name: "Night 1", capacity: 20_000, ticketTypes });
  const matinee = await createEvent(cluster, { name: "Matinee", capacity: 5000, ticketTypes });
  await http.call(cluster.url, `/v1/events/${matinee.id}/waiting-room`, {
    method: "PUT",
    body: { admissionRatePerSecond: 50 },
    admin: true,
  });
  let stopped = false;
  const load = buy(cluster, night.id, () => stopped);
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${cluster.url}/dashboard`);
  await page.getByLabel("Admin token").fill(E2E_ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('#instances tbody tr[data-instance="i-3"]').waitFor();
  await sleep(12_000);
  await page.getByRole("button", { name: "Pause the sale of Matinee" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Pause sale" }).click();
  await sleep(2_500);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  stopped = true;
  await load;
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await stopAllClusters();
  await http.close();
  rmSync(dir, { recursive: true, force: true });
}
