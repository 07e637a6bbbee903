/**
 * The waiting page in a real browser (headless Chromium, driven by playwright-core) against a real
 * `boxoffice server`: it joins, shows the buyer's place and updates it by itself until the buyer is let
 * in, keeps the access token, has no accessibility violation that axe finds (WCAG 2 A and AA), and shows
 * an event's name as text, never as markup. Skipped with a reason where there is no Chromium (a failure under CI=true).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import type { Browser } from "playwright-core";
import type { Event } from "../../src/domain/event.js";
import { chromiumSkipReason, launchChromium } from "../support/headless-chromium.js";
import { HttpClient } from "../support/http-client.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const chromiumSkip = chromiumSkipReason();

/** Buyers who join before the page's buyer, and the rate that lets them in. */
const AHEAD = 40;
const RATE = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves once `check` is true (asked every 100 ms); the test's timeout bounds the wait. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await sleep(100);
}

describe("the waiting page", { skip: chromiumSkip, timeout: 120_000 }, () => {
  const http = new HttpClient(8);
  let dataDir: string;
  let server: ServerProcess;
  let browser: Browser;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "boxoffice-waiting-page-"));
    server = await ServerProcess.start({ dataDir, instanceId: "page-1" });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stopAll();
    await http.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("shows the place, updates it by itself until the buyer is let in, and passes axe", async () => {
    const name = `Night <img src=x onerror="window.pwned=1"> & "friends"`;
    const created = await http.call<Event>(server.url, "/v1/events", {
      admin: true,
      body: { name, capacity: 100 },
    });
    assert.equal(created.status, 201, created.text);
    const eventId = created.body.id;
    const room = await http.call(server.url, `/v1/events/${eventId}/waiting-room`, {
      method: "PUT",
      admin: true,
      body: { admissionRatePerSecond: RATE },
    });
    assert.equal(room.status, 201, room.text);
    for (let i = 0; i < AHEAD; i++) {
      const joined = await http.call(server.url, `/v1/events/${eventId}/queue`, { body: {} });
      assert.equal(joined.status, 201, joined.text);
    }

    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      const polls: number[] = [];
      page.on("request", (request) => {
        if (request.method() === "GET" && request.url().endsWith(`/v1/events/${eventId}/queue`))
          polls.push(Date.now());
      });
      await page.goto(`${server.url}/queue/${eventId}`);
      // The name is text: the markup in it neither renders nor runs.
      assert.equal(await page.locator("h1 .event").textContent(), name);
      assert.equal(await page.locator("h1 img").count(), 0);

      // A place in the queue, shown in the live region and the figures.
      await until(async () => /You are number \d+/.test((await page.locator("#status").textContent()) ?? ""));
      const firstPosition = Number(await page.locator("#position").textContent());
      assert.ok(firstPosition >= 1 && firstPosition <= AHEAD + 1, `${firstPosition}`);
      assert.equal(await page.locator("#status").getAttribute("role"), "status");
      const waiting = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa"]).analyze();
      assert.deepEqual(
        waiting.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
        [],
      );

      // Without a reload: the position goes down (unless the buyer was next), then the buyer is let in
      // and the token kept.
      await until(async () => {
        const position = Number(await page.locator("#position").textContent());
        return (position >= 1 && position < firstPosition) || (await page.locator("#admitted").isVisible());
      });
      await until(() => page.locator("#admitted").isVisible());
      assert.match((await page.locator("#status").textContent())!, /It is your turn/);
      const { origins } = await context.storageState();
      const accessToken = origins
        .flatMap((origin) => origin.localStorage)
        .find((item) => item.name === `boxoffice:access:${eventId}`)?.value;
      assert.ok(accessToken?.startsWith("a1."), `${accessToken}`);
      assert.ok(polls.length >= 2, `the page polled ${polls.length} times`);
      const admitted = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa"]).analyze();
      assert.deepEqual(
        admitted.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
        [],
      );
    } finally {
      await context.close();
    }
  });
});
