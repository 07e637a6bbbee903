/**
 * The operations dashboard in headless Chromium, against a real cluster started as `boxoffice up` starts
 * it (a supervisor, the balancer and two instances, each its own process), reached only through the
 * balancer's address: a wrong token shows nothing but the refusal; an instance SIGKILLed shows as died
 * and comes back (the supervisor restarts it); a sale paused from the dashboard (after its confirmation;
 * a cancelled one sends nothing) refuses purchases through the API with sale_paused; an instance drained
 * from the dashboard leaves the cluster, and scaling back (by keyboard alone) starts a new one; axe finds no serious or critical violation on the page, signed
 * out and signed in.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import AxeBuilder from "@axe-core/playwright";
import type { Browser, Page } from "playwright-core";
import type { Event } from "../../src/domain/event.js";
import { freePort } from "../support/backend-fixture.js";
import { ClusterProcess, stopAllClusters } from "../support/cluster-process.js";
import { chromiumSkipReason, launchChromium } from "../support/headless-chromium.js";
import { HttpClient } from "../support/http-client.js";
import { E2E_ADMIN_TOKEN } from "../support/server-process.js";

const skip = chromiumSkipReason();
const http = new HttpClient(8);
const dirs: string[] = [];

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The text of each cell of the instance's row on the dashboard, or null when it has no row. */
async function instanceRow(page: Page, id: string): Promise<string[] | null> {
  const row = page.locator(`#instances tbody tr[data-instance="${id}"]`);
  if ((await row.count()) === 0) return null;
  return row.locator("td").allInnerTexts();
}

async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

describe("the operations dashboard in a browser", { skip }, () => {
  let cluster: ClusterProcess;
  let browser: Browser;
  let page: Page;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-dashboard-"));
    dirs.push(dir);
    const instancePortBase = String(20_000 + Math.floor(Math.random() * 30_000));
    [cluster, browser] = await Promise.all([
      freePort().then((port) =>
        ClusterProcess.start(dir, port, ["--instances", "2", "--instance-port-base", instancePortBase]),
      ),
      launchChromium(),
    ]);
    // A phone-sized window: the page must be usable at that width.
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await stopAllClusters();
    await http.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("shows nothing but the refusal for a wrong token", async () => {
    await page.goto(`${cluster.url}/dashboard`);
    assert.deepEqual(await seriousViolations(page), []);
    await page.getByLabel("Admin token").fill(`${E2E_ADMIN_TOKEN}x`);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("This token was refused.").waitFor();
    assert.equal(await page.locator("#board").isVisible(), false);
    assert.equal(await page.locator("#instances tbody tr").count(), 0);
    assert.equal(await page.evaluate("sessionStorage.length"), 0);
  });

  it("signs in with the admin token and lists the instances, with no serious accessibility violation", async () => {
    // By keyboard alone: type the token, press Enter.
    await page.getByLabel("Admin token").focus();
    await page.keyboard.type(E2E_ADMIN_TOKEN);
    await page.keyboard.press("Enter");
    await waitFor("both instances ready on the dashboard", async () => {
      const rows = await Promise.all(["i-1", "i-2"].map((id) => instanceRow(page, id)));
      return rows.every((row) => row?.[1] === "ready");
    });
    // Figures arrive with the second view (rates need two scrapes).
    await waitFor("figures", async () => (await instanceRow(page, "i-1"))?.[3] !== "—");
    assert.deepEqual(await seriousViolations(page), []);
    // The token is kept for this tab, never in the address.
    assert.equal(new URL(page.url()).search, "");
  });

  it("shows an instance that was SIGKILLed go down and come back", async () => {
    const before = (await cluster.status()).instances.find((i) => i.id === "i-1");
    assert.ok(before?.pid !== undefined);
    process.kill(before.pid, "SIGKILL");
    await page.locator("#history li", { hasText: "i-1: died (SIGKILL)" }).waitFor({ timeout: 20_000 });
    await waitFor("i-1 serving again with one restart", async () => {
      const row = await instanceRow(page, "i-1");
      return row?.[1] === "ready" && row[5] === "1";
    });
    const afterRestart = (await cluster.status()).instances.find((i) => i.id === "i-1");
    assert.notEqual(afterRestart?.pid, before.pid);
  });

  it("pauses a sale, once confirmed; purchases are then refused with sale_paused", async () => {
    const created = await http.call<Event>(cluster.url, "/v1/events", {
      body: { name: "Dashboard <b>night</b>", capacity: 100 },
      admin: true,
    });
    assert.equal(created.status, 201, created.text);
    const event = created.body;
    const row = page.locator(`#events tbody tr[data-event="${event.id}"]`);
    // The name is shown as text: the markup in it is not markup on the page.
    await row.getByText("Dashboard <b>night</b>").waitFor();
    assert.equal(await page.locator("#events b").count(), 0);

    const pause = row.getByRole("button", { name: "Pause the sale of Dashboard <b>night</b>" });
    await pause.click();
    // The confirmation, open: focus is in it, on Cancel, and axe finds nothing serious there either.
    await page.getByRole("dialog").waitFor();
    assert.equal(await page.evaluate("document.activeElement.id"), "confirm-cancel");
    assert.deepEqual(await seriousViolations(page), []);
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    await page.getByText("Cancelled; nothing was sent.").waitFor();
    const still = await http.call<Event>(cluster.url, `/v1/events/${event.id}/report`, { admin: true });
    assert.equal((still.body as unknown as { state: string }).state, "on_sale");

    await pause.click();
    await page.getByRole("dialog").getByRole("button", { name: "Pause sale" }).click();
    await row.locator("td", { hasText: /^paused$/ }).waitFor();
    const purchase = await http.call(cluster.url, `/v1/events/${event.id}/orders`, {
      body: { customerId: "dashboard-buyer", quantity: 1 },
      headers: { "idempotency-key": "dashboard-paused-1" },
    });
    assert.equal(purchase.status, 409, purchase.text);
    assert.equal((purchase.body as { code: string }).code, "sale_paused");
  });

  it("drains an instance, once confirmed: it leaves the cluster", async () => {
    await waitFor("i-2 serving", async () => (await instanceRow(page, "i-2"))?.[1] === "ready");
    await page.getByRole("button", { name: "Drain i-2" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Drain i-2" }).click();
    await page.locator("#history li", { hasText: "i-2: drained and stopped" }).waitFor({ timeout: 20_000 });
    await waitFor("i-2 gone from the table", async () => (await instanceRow(page, "i-2")) === null);
    const status = await cluster.status();
    assert.deepEqual(
      status.instances.map((i) => i.id),
      ["i-1"],
    );
  });

  it("scales the cluster, by keyboard alone, once confirmed", async () => {
    await page.getByLabel("Number of instances").focus();
    await page.keyboard.press("Control+A");
    await page.keyboard.type("2");
    await page.keyboard.press("Enter");
    // The dialog opens on Cancel; Tab moves to the confirmation.
    await page.getByRole("dialog").getByRole("button", { name: "Scale to 2" }).waitFor();
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByText("Scaling to 2 instances.").waitFor();
    await waitFor("a new instance serving", async () => (await instanceRow(page, "i-3"))?.[1] === "ready");
    await page
      .locator("#scaling-decisions li", { hasText: "up from 1 to 2 (asked by an operator)" })
      .waitFor();
    assert.deepEqual(
      (await cluster.status()).instances.map((i) => i.id),
      ["i-1", "i-3"],
    );
  });

  it("signs out leaving nothing of what it showed, and the token forgotten", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out.").waitFor();
    assert.equal(await page.locator("#board").isVisible(), false);
    assert.equal(await page.locator("#board tbody tr").count(), 0);
    assert.equal(await page.locator("#board li").count(), 0);
    assert.equal(await page.evaluate("sessionStorage.length"), 0);
    // A reload does not sign in again.
    await page.reload();
    await page.getByLabel("Admin token").waitFor();
    assert.equal(await page.locator("#board").isVisible(), false);
  });
});
