/** `boxoffice rehearse`'s settings: defaults, the mix, the seating shape, and bad values named. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadRehearsalConfig } from "../../../src/config/rehearsal-config.js";
import { ConfigError } from "../../../src/domain/errors.js";

describe("rehearsal config", () => {
  it("has working defaults, frozen", () => {
    const config = loadRehearsalConfig({}, {});
    assert.equal(config.url, "http://127.0.0.1:8080");
    assert.equal(config.rate, 50);
    assert.deepEqual(config.events, []);
    assert.deepEqual(config.create, ["general", "seated"]);
    assert.deepEqual(config.seating, { sections: 2, rows: 20, seatsPerRow: 25 });
    assert.equal(config.mix.order, 60);
    assert.equal(config.adminToken, null);
    assert.equal(config.verifyOnly, null);
    assert.ok(Object.isFrozen(config));
  });

  it("reads flags over variables: events repeated, the mix, the URL's origin", () => {
    const config = loadRehearsalConfig(
      { event: ["evt_A", "evt_B"], mix: "order=1,hold-abandon=2", url: "http://staging:8080/" },
      {
        BOXOFFICE_REHEARSE_RATE: "12.5",
        BOXOFFICE_ADMIN_TOKEN: "a-token-of-twenty-chars",
        BOXOFFICE_REHEARSE_URL: "http://x",
      },
    );
    assert.deepEqual(config.events, ["evt_A", "evt_B"]);
    assert.deepEqual(config.mix, {
      order: 1,
      "hold-confirm": 0,
      "hold-release": 0,
      "order-cancel": 0,
      "hold-abandon": 2,
    });
    assert.equal(config.url, "http://staging:8080");
    assert.equal(config.rate, 12.5);
    assert.equal(config.adminToken, "a-token-of-twenty-chars");
  });

  it("refuses bad values, naming the flag", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ mix: "order=1,buy-twice=3" }, /--mix: "buy-twice=3"/],
      [{ mix: "order=0" }, /--mix must give at least one flow/],
      [{ seating: "2x0x5" }, /--seating must be/],
      [{ seating: "27x1x1" }, /--seating must be/],
      [{ url: "ftp://x" }, /--url must be an http/],
      [{ rate: "0" }, /--rate must be a number >= 0.1/],
      [{ holdTtlSeconds: "10" }, /--hold-ttl-seconds/],
      [{ create: "general,vip" }, /--create must be one of general, seated/],
      [{ event: "evt_1;rm" }, /--event: "evt_1;rm" is not an event id/],
    ];
    for (const [flags, message] of bad) {
      assert.throws(
        () => loadRehearsalConfig(flags, {}),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          return true;
        },
      );
    }
    assert.throws(() => loadRehearsalConfig({}, { BOXOFFICE_ADMIN_TOKEN: "short" }), /BOXOFFICE_ADMIN_TOKEN/);
    // A ramp longer than the duration is no mistake: the rate climbs until arrivals stop.
    assert.equal(loadRehearsalConfig({ durationSeconds: "2" }, {}).rampSeconds, 5);
  });
});
