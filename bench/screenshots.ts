/**
 * Writes the storefront's screenshots (docs/screenshots/storefront.png, seat-map.png, waiting-room.png)
 * with the browser tests' own tooling (test/support/storefront-site.ts): a real cluster, events set up
 * through the API, headless Chromium. Run after `npm run build`:
 *
 *     node dist/bench/screenshots.js
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, StorefrontSite } from "../test/support/storefront-site.js";

const OUT_DIR = join("docs", "screenshots");

async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    console.log(
      "node dist/bench/screenshots.js — writes docs/screenshots/{storefront,seat-map,waiting-room}.png",
    );
    return;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const [site, browser] = await Promise.all([StorefrontSite.start(2), launchChromium()]);
  try {
    const inAMonth = new Date(Date.now() + 30 * 86_400_000);
    inAMonth.setUTCHours(19, 30, 0, 0);
    const festival = await site.createEvent({
      name: "Summer Festival — Day 1",
      description: "Three stages, twelve bands, one field.",
      capacity: 5000,
      startsAt: inAMonth.toISOString(),
      ticketTypes: [
        { id: "adult", name: "Adult", price: 6500, maxPerOrder: 6 },
        { id: "child", name: "Child (under 14)", price: 2500 },
      ],
    });
    const hall = await site.createEvent({
      name: "Symphony No. 9 — Concert Hall",
      startsAt: new Date(inAMonth.getTime() + 86_400_000).toISOString(),
      seating: {
        sections: [
          { name: "Stalls", rows: 6, seatsPerRow: 12 },
          { name: "Balcony", rows: 3, seatsPerRow: 10 },
        ],
      },
      price: 3500,
      priceZones: [
        { id: "front", name: "Front stalls", price: 9000, section: "Stalls", rows: { from: 1, to: 2 } },
        { id: "stalls", name: "Stalls", price: 6000, section: "Stalls", rows: { from: 3, to: 6 } },
      ],
    });
    const tour = await site.createEvent({
      name: "Stadium Tour 2027",
      capacity: 60_000,
      startsAt: new Date(inAMonth.getTime() + 2 * 86_400_000).toISOString(),
      price: 8900,
    });
    await site.createEvent({
      name: "Jazz Late Show",
      capacity: 120,
      salesStartAt: new Date(Date.now() + 2 * 86_400_000).toISOString(),
      price: 2800,
    });
    // Some sales, so the figures move.
    await site.call(`/v1/events/${festival.id}/orders`, {
      body: { customerId: "shot-1", items: [{ ticketTypeId: "adult", quantity: 4 }] },
    });
    for (const seats of [
      ["Stalls-1-5", "Stalls-1-6"],
      ["Stalls-3-1", "Stalls-3-2", "Stalls-3-3"],
      ["Balcony-1-4"],
    ]) {
      await site.call(`/v1/events/${hall.id}/orders`, { body: { customerId: `shot-${seats[0]}`, seats } });
    }
    await site.admin("PUT", `/v1/events/${tour.id}/waiting-room`, { admissionRatePerSecond: 0.01 });
    for (let i = 0; i < 40; i++) await site.call(`/v1/events/${tour.id}/queue`, { method: "POST", body: {} });

    const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    const page = await context.newPage();
    await page.goto(`${site.url}/`);
    await page.locator(`li[data-event-id="${festival.id}"] .availability`, { hasText: "left" }).waitFor();
    await page.screenshot({ path: join(OUT_DIR, "storefront.png"), fullPage: true });

    await page.goto(`${site.url}/events/${hall.id}`);
    await page.locator('[data-seat="Stalls-2-6"]').click();
    await page.locator('[data-seat="Stalls-2-7"]').click();
    await page.locator("#selection", { hasText: "2 seats chosen" }).waitFor();
    await page.screenshot({ path: join(OUT_DIR, "seat-map.png"), fullPage: true });

    const phone = await browser.newContext({ viewport: { width: 390, height: 760 } });
    const queue = await phone.newPage();
    await queue.goto(`${site.url}/queue/${tour.id}`);
    await queue.locator("#position", { hasText: /\d/ }).waitFor();
    await queue.screenshot({ path: join(OUT_DIR, "waiting-room.png"), fullPage: true });
    console.log(`screenshots: wrote storefront.png, seat-map.png, waiting-room.png in ${OUT_DIR}`);
  } finally {
    await browser.close();
    await site.close();
  }
}

await main();
