/**
 * The storefront in headless Chromium (Debian's package, driven by playwright-core) against a real
 * cluster: `boxoffice up` with two instance processes behind the real balancer, every page and API call
 * through the balancer. One browser and one cluster are shared by the cases; each case has its own
 * browser context (its own device: storage, customer id) and its own events.
 *
 * Shown: general-admission tickets bought with their total; two seats picked (by mouse and keyboard),
 * held with a countdown, then confirmed; a seat taken by someone else; availability falling while
 * another buyer (an API call) buys; sold-out, not-open-yet and paused messages; a 503 retried with the
 * same Idempotency-Key; a waiting room waited through, then a purchase; an order opened by its secret
 * link and cancelled; an event named like an HTML injection shown as text. axe-core checks every page:
 * no serious or critical violation.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { AxeBuilder } from "@axe-core/playwright";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Event } from "../../src/domain/event.js";
import { chromiumSkipReason, launchChromium, StorefrontSite } from "../support/storefront-site.js";

const skip = chromiumSkipReason();
/** Generous: the machine may be busy; nothing here measures speed. */
const UI_TIMEOUT_MS = 30_000;

// The cases are independent (each its own events and browser context), so they run side by side.
describe("the storefront in a browser, through the balancer", { skip, concurrency: 4 }, () => {
  let site: StorefrontSite;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** Uncaught errors of the pages' scripts: each is a failure. */
  const pageErrors: string[] = [];

  before(async () => {
    [site, browser] = await Promise.all([StorefrontSite.start(2), launchChromium()]);
  });
  afterEach(() => {
    assert.deepEqual(pageErrors.splice(0), [], "script errors in the pages");
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });

  /** A new buyer's device: a phone-sized window. */
  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
    contexts.push(context);
    const page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`));
    return page;
  }

  async function assertAccessible(page: Page): Promise<void> {
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
      [],
      `axe on ${page.url()}`,
    );
    // Usable at phone width: nothing makes the page scroll sideways (the seat map scrolls in its own box).
    const [scrollWidth, clientWidth] = (await page.evaluate(
      "[document.documentElement.scrollWidth, document.documentElement.clientWidth]",
    )) as number[];
    assert.ok(
      (scrollWidth ?? 0) <= (clientWidth ?? 0),
      `${page.url()} is ${scrollWidth} px wide at phone width`,
    );
  }

  /** Waits until the element's text differs from what it was (a countdown ticks). */
  async function textChanges(page: Page, id: string, was: string | null): Promise<void> {
    // Polled from here: the page's CSP (rightly) forbids the eval that waitForFunction(string) needs.
    const deadline = Date.now() + UI_TIMEOUT_MS;
    while ((await page.locator(`#${id}`).textContent()) === was) {
      assert.ok(Date.now() < deadline, `#${id} still reads ${was}`);
      await sleep(200);
    }
  }

  async function buyByApi(event: Event, quantity: number): Promise<void> {
    const answer = await site.call(`/v1/events/${event.id}/orders`, {
      body: { customerId: `other-${Math.random()}`, quantity },
    });
    assert.equal(answer.status, 201, answer.text);
  }

  it("lists the events on sale with prices and availability; a name full of HTML is text", async () => {
    const hostile = `<img src=x onerror="window.__xss=1">`;
    const listed = await site.createEvent({
      name: hostile,
      capacity: 40,
      startsAt: "2027-06-01T19:00:00Z",
      ticketTypes: [
        { id: "adult", name: "Adult <b>", price: 4500 },
        { id: "child", name: "Child", price: 2000 },
      ],
    });
    const draft = await site.createEvent({ name: "A draft nobody sees", capacity: 5, state: "draft" });
    const page = await newPage();
    await page.goto(`${site.url}/`);
    const card = page.locator(`li[data-event-id="${listed.id}"]`);
    await card.waitFor();
    assert.equal(await card.locator("h2").textContent(), hostile);
    assert.equal(await card.locator(".price").textContent(), "from €20.00");
    assert.equal(await card.locator(".availability").textContent(), "40 of 40 left");
    assert.equal(await page.locator(`li[data-event-id="${draft.id}"]`).count(), 0);
    assert.equal(await page.locator("#events img").count(), 0);
    assert.equal(await page.evaluate("window.__xss"), undefined);
    await assertAccessible(page);

    await card.locator("a").click();
    await page.waitForURL(`**/events/${listed.id}`);
    await page.locator("#event-name", { hasText: hostile }).waitFor();
    assert.equal(await page.locator("main img").count(), 0);
    assert.equal(await page.locator('label[for="qty-adult"]').textContent(), "Adult <b> — €45.00");
    assert.equal(await page.evaluate("window.__xss"), undefined);
  });

  it("buys general-admission tickets, shows the total, and cancels the order from its secret link", async () => {
    const event = await site.createEvent({
      name: "Open air",
      capacity: 100,
      ticketTypes: [
        { id: "adult", name: "Adult", price: 4500 },
        { id: "child", name: "Child", price: 2000 },
      ],
    });
    const page = await newPage();
    await page.goto(`${site.url}/events/${event.id}`);
    await page.locator("#availability", { hasText: "100 of 100 tickets available." }).waitFor();
    await assertAccessible(page);
    await page.getByLabel("Adult — €45.00").fill("2");
    await page.getByLabel("Child — €20.00").fill("1");
    await page.locator("#ga-total", { hasText: "€110.00" }).waitFor();
    await page.getByRole("button", { name: "Buy tickets" }).click();
    await page.locator("#order-panel").waitFor({ state: "visible" });
    assert.equal(await page.locator("#order-total").textContent(), "€110.00");
    assert.deepEqual(await page.locator("#order-lines li").allTextContents(), [
      "2 × Adult (€45.00) — €90.00",
      "1 × Child (€20.00) — €20.00",
    ]);
    await page.locator("#availability", { hasText: "97 of 100" }).waitFor();

    const link = await page.locator("#order-link").getAttribute("href");
    assert.match(link ?? "", /^\/orders\/ord_[^?#]+#secret=[A-Za-z0-9_-]{43}$/);
    await page.locator("#order-link").click();
    await page.waitForURL("**/orders/**");
    await page.locator("#order-state", { hasText: "Confirmed" }).waitFor();
    assert.equal(await page.locator("#order-total").textContent(), "€110.00");
    assert.equal(await page.locator("#order-event").textContent(), "Open air");
    await assertAccessible(page);
    await page.getByRole("button", { name: "Cancel this order" }).click();
    await page.getByRole("button", { name: "Yes, cancel the order" }).click();
    await page.locator("#order-state", { hasText: "Cancelled" }).waitFor();
    const after = await site.call<Event>(`/v1/events/${event.id}`);
    assert.equal(after.body.available, 100);

    // A ?secret= link (as in an e-mail) opens it too, and the secret moves out of the query at once.
    const [orderPath, fragment] = (link ?? "").split("#");
    const viaQuery = await newPage();
    await viaQuery.goto(`${site.url}${orderPath}?${fragment}`);
    await viaQuery.locator("#order-state", { hasText: "Cancelled" }).waitFor();
    assert.equal(new URL(viaQuery.url()).search, "");
    assert.equal(new URL(viaQuery.url()).hash, `#${fragment}`);

    // The same page without the secret opens nothing.
    const stranger = await newPage();
    await stranger.goto(`${site.url}${(link ?? "").split("#")[0]}`);
    await stranger.locator("#message", { hasText: "No order answers this link" }).waitFor();
    assert.equal(await stranger.locator("#order").isHidden(), true);
  });

  it("shows availability falling, on the event page and the list, while another buyer buys", async () => {
    const event = await site.createEvent({ name: "Club night", capacity: 10 });
    const page = await newPage();
    const list = await newPage();
    await page.goto(`${site.url}/events/${event.id}`);
    await list.goto(`${site.url}/`);
    const card = list.locator(`li[data-event-id="${event.id}"] .availability`);
    await page.locator("#availability", { hasText: "10 of 10 tickets available." }).waitFor();
    await card.filter({ hasText: "10 of 10 left" }).waitFor();
    await buyByApi(event, 3);
    await page.locator("#availability", { hasText: "7 of 10 tickets available." }).waitFor();
    await card.filter({ hasText: "7 of 10 left" }).waitFor();
    await buyByApi(event, 4);
    await page.locator("#availability", { hasText: "3 of 10 tickets available." }).waitFor();
    await card.filter({ hasText: "3 of 10 left" }).waitFor();
    await buyByApi(event, 3);
    await card.filter({ hasText: "Sold out" }).waitFor();
  });

  it("says sold out, not open yet (with a countdown) and paused, and offers no purchase then", async () => {
    const soldOut = await site.createEvent({ name: "Tiny gig", capacity: 2 });
    const page = await newPage();
    await page.goto(`${site.url}/events/${soldOut.id}`);
    await page.locator("#sale-state", { hasText: "On sale now." }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Buy tickets" }).isEnabled(), true);
    await buyByApi(soldOut, 2);
    await page.locator("#sale-state", { hasText: "Sold out." }).waitFor();
    await page.locator("#availability", { hasText: "No tickets left." }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Buy tickets" }).isDisabled(), true);
    await assertAccessible(page);

    const opensAt = new Date(Date.now() + 3_600_000).toISOString();
    const later = await site.createEvent({ name: "Next year", capacity: 10, salesStartAt: opensAt });
    await page.goto(`${site.url}/events/${later.id}`);
    await page.locator("#sale-state", { hasText: "The sale has not opened yet." }).waitFor();
    const first = await page.locator("#countdown").textContent();
    assert.match(first ?? "", /^(1:00:00|59:[0-5]\d)$/);
    await textChanges(page, "countdown", first);
    assert.equal(await page.getByRole("button", { name: "Buy tickets" }).isDisabled(), true);

    const paused = await site.createEvent({ name: "Paused show", capacity: 10 });
    await page.goto(`${site.url}/events/${paused.id}`);
    await page.locator("#sale-state", { hasText: "On sale now." }).waitFor();
    await site.admin("POST", `/v1/events/${paused.id}/pause`);
    await page.locator("#sale-state", { hasText: "The sale is paused" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Buy tickets" }).isDisabled(), true);
    await site.admin("POST", `/v1/events/${paused.id}/resume`);
    await page.locator("#sale-state", { hasText: "On sale now." }).waitFor();
  });

  it("retries a 503 with backoff and the same Idempotency-Key, and buys once", async () => {
    const event = await site.createEvent({ name: "Busy night", capacity: 10 });
    const page = await newPage();
    const keys: string[] = [];
    await page.route(`**/v1/events/${event.id}/orders`, async (route) => {
      keys.push(route.request().headers()["idempotency-key"] ?? "");
      if (keys.length === 1) {
        await route.fulfill({
          status: 503,
          headers: { "retry-after": "1", "content-type": "application/problem+json" },
          body: JSON.stringify({ status: 503, code: "unavailable", detail: "busy" }),
        });
      } else await route.continue();
    });
    await page.goto(`${site.url}/events/${event.id}`);
    await page.getByLabel("General admission — €0.00").fill("2");
    await page.getByRole("button", { name: "Buy tickets" }).click();
    await page.locator("#progress", { hasText: "The box office is busy. Trying again" }).waitFor();
    await page.locator("#order-panel").waitFor({ state: "visible" });
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1]);
    assert.ok((keys[0] ?? "").length > 0);
    assert.equal((await site.call<Event>(`/v1/events/${event.id}`)).body.sold, 2);
  });

  it("picks two seats, holds them with a countdown, and confirms; a seat taken meanwhile is said so", async () => {
    const event = await site.createEvent({
      name: "Concert hall",
      seating: { sections: [{ name: "A", rows: 3, seatsPerRow: 6 }] },
      price: 5000,
      priceZones: [{ id: "front", name: "Front row", price: 8000, section: "A", rows: { from: 1, to: 1 } }],
    });
    const page = await newPage();
    await page.goto(`${site.url}/events/${event.id}`);
    await page.locator('[data-seat="A-1-1"]').waitFor();
    await assertAccessible(page);

    // A seat taken by someone else between the page's look and the buyer's click. The page's own look
    // (its poll of the seat map every 2 s) is held back until the click, or it could see the rival's
    // seat first and take it out of the selection (the CI run of bf6a643 did: the button disabled).
    const heldBack: (() => Promise<void>)[] = [];
    let holdBack = true;
    const seatMap = `**/v1/events/${event.id}/seats`;
    await page.route(seatMap, async (route) => {
      if (holdBack) heldBack.push(() => route.continue());
      else await route.continue();
    });
    await page.locator('[data-seat="A-2-1"]').click();
    const rival = await site.call(`/v1/events/${event.id}/holds`, {
      body: { customerId: "rival", seats: ["A-2-1"] },
    });
    assert.equal(rival.status, 201, rival.text);
    await page.getByRole("button", { name: "Hold these seats" }).click();
    holdBack = false;
    for (const release of heldBack.splice(0)) await release();
    await page.unroute(seatMap);
    await page.locator("#message", { hasText: "Seats just taken: A-2-1" }).waitFor();
    await page.locator('[data-seat="A-2-1"][aria-disabled="true"]').waitFor();

    // One seat by mouse, the next by keyboard (arrow key, then Space).
    await page.locator('[data-seat="A-1-1"]').click();
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Space");
    await page.locator("#selection", { hasText: "2 seats chosen: A-1-1, A-1-2 — €160.00." }).waitFor();
    assert.equal(await page.locator('[data-seat="A-1-2"]').getAttribute("aria-pressed"), "true");
    // The map is one tab stop, the seat last reached.
    assert.equal(await page.locator('.seat[tabindex="0"]').count(), 1);
    assert.equal(await page.locator('.seat[tabindex="0"]').getAttribute("data-seat"), "A-1-2");
    await page.getByRole("button", { name: "Hold these seats" }).click();
    await page.locator("#hold-panel").waitFor({ state: "visible" });
    assert.equal(await page.locator("#hold-total").textContent(), "€160.00");
    const timer = await page.locator("#hold-timer").textContent();
    assert.match(timer ?? "", /^(10:00|9:[0-5]\d)$/);
    await textChanges(page, "hold-timer", timer);
    const held = await site.call<{ sections: { rows: { seats: { id: string; status: string }[] }[] }[] }>(
      `/v1/events/${event.id}/seats`,
    );
    const statusOf = (map: typeof held.body, id: string) =>
      map.sections[0]?.rows.flatMap((r) => r.seats).find((s) => s.id === id)?.status;
    assert.equal(statusOf(held.body, "A-1-1"), "held");
    assert.equal(statusOf(held.body, "A-1-2"), "held");

    await page.getByRole("button", { name: "Confirm and buy" }).click();
    await page.locator("#order-panel").waitFor({ state: "visible" });
    assert.equal(await page.locator("#order-total").textContent(), "€160.00");
    const sold = await site.call<typeof held.body>(`/v1/events/${event.id}/seats`);
    assert.equal(statusOf(sold.body, "A-1-1"), "sold");
    assert.equal(statusOf(sold.body, "A-1-2"), "sold");
  });

  it("lets go of held seats", async () => {
    const event = await site.createEvent({
      name: "Small hall",
      seating: { sections: [{ name: "B", rows: 1, seatsPerRow: 4 }] },
    });
    const page = await newPage();
    await page.goto(`${site.url}/events/${event.id}`);
    await page.locator('[data-seat="B-1-3"]').click();
    await page.getByRole("button", { name: "Hold these seats" }).click();
    await page.locator("#hold-panel").waitFor({ state: "visible" });
    assert.equal((await site.call<Event>(`/v1/events/${event.id}`)).body.held, 1);
    await page.getByRole("button", { name: "Let them go" }).click();
    await page.locator("#hold-panel").waitFor({ state: "hidden" });
    assert.equal((await site.call<Event>(`/v1/events/${event.id}`)).body.held, 0);
  });

  it("sends a buyer through the waiting room, then lets them buy", async () => {
    const event = await site.createEvent({ name: "Big on-sale", capacity: 50 });
    // The room opens in an hour: the buyer waits in the pre-queue until the admin opens it now.
    const room = `/v1/events/${event.id}/waiting-room`;
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    await site.admin("PUT", room, { admissionRatePerSecond: 5, sessionSeconds: 600, opensAt: inAnHour });
    const page = await newPage();
    await page.goto(`${site.url}/events/${event.id}`);
    await page.locator("#queue-text", { hasText: "This sale has a waiting room" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Buy tickets" }).isDisabled(), true);
    await page.getByRole("link", { name: "Join the queue" }).click();
    await page.waitForURL(`**/queue/${event.id}`);
    await page.locator("#status", { hasText: "You are in the pre-queue" }).waitFor();
    await assertAccessible(page);
    const early = await site.call(`/v1/events/${event.id}/orders`, {
      body: { customerId: "no-pass", quantity: 1 },
    });
    assert.equal(early.status, 403, "no purchase without the room's pass");
    await site.admin("PUT", room, { admissionRatePerSecond: 5, opensAt: new Date().toISOString() });
    // The pre-queue polls rarely (the opening was an hour off); coming back to the page keeps the place.
    await page.reload();
    await page.locator("#admitted").waitFor({ state: "visible" });
    await assertAccessible(page);
    await page.getByRole("link", { name: "Go to the ticket shop" }).click();
    await page.waitForURL(`**/events/${event.id}`);
    await page.locator("#queue-text", { hasText: "It is your turn" }).waitFor();
    await page.getByLabel("General admission — €0.00").fill("2");
    await page.getByRole("button", { name: "Buy tickets" }).click();
    await page.locator("#order-panel").waitFor({ state: "visible" });
    assert.equal((await site.call<Event>(`/v1/events/${event.id}`)).body.sold, 2);
  });

  it("serves every page with a strict Content-Security-Policy, nosniff and no referrer", async () => {
    for (const path of [
      "/",
      "/events/evt_x",
      "/orders/ord_x",
      "/storefront/event.js",
      "/storefront/storefront.css",
    ]) {
      const answer = await site.call(path);
      assert.equal(answer.status, 200, path);
      assert.match(String(answer.headers["content-security-policy"]), /script-src 'self';/);
      assert.doesNotMatch(String(answer.headers["content-security-policy"]), /unsafe/);
      assert.equal(answer.headers["x-content-type-options"], "nosniff");
      assert.equal(answer.headers["referrer-policy"], "no-referrer");
    }
    assert.equal((await site.call("/storefront/../../package.json")).status, 404);
  });
});
