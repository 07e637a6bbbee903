/** How every command reads a setting: flag, else variable, else default; one error naming the source. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readSetting, readSettings, wholeNumber, type Setting } from "../../../src/config/settings.js";
import { ConfigError } from "../../../src/domain/errors.js";

const count: Setting<number> = {
  flag: "max-widgets",
  env: "BOXOFFICE_MAX_WIDGETS",
  description: "widgets",
  defaultText: "4",
  parse: wholeNumber(1, 10),
};

describe("settings", () => {
  it("takes the flag, else the variable (an empty one is unset), else the default", () => {
    assert.equal(readSetting(count, { maxWidgets: "7" }, { BOXOFFICE_MAX_WIDGETS: "9" }), 7);
    assert.equal(readSetting(count, {}, { BOXOFFICE_MAX_WIDGETS: "9" }), 9);
    assert.equal(readSetting(count, {}, { BOXOFFICE_MAX_WIDGETS: "" }), 4);
    assert.equal(readSetting(count, {}, {}), 4);
  });

  it("names the flag, the variable or the default that was wrong", () => {
    const wrong = (flags: Record<string, string>, env: Record<string, string>, named: RegExp) =>
      assert.throws(
        () => readSetting({ ...count, defaultText: "0" }, flags, env),
        (error: unknown) =>
          error instanceof ConfigError && error.code === "INVALID_CONFIG" && named.test(error.message),
      );
    wrong({ maxWidgets: "11" }, {}, /^--max-widgets must be/);
    wrong({}, { BOXOFFICE_MAX_WIDGETS: "x" }, /^BOXOFFICE_MAX_WIDGETS must be/);
    wrong({}, {}, /^the default of --max-widgets must be/);
  });

  it("never reads a variable-only setting from a flag, and joins a repeated flag's values", () => {
    const secret: Setting<string> = { ...count, flag: null, env: "BOXOFFICE_SECRET", parse: (text) => text };
    assert.equal(
      readSetting(secret, { maxWidgets: "from a flag" }, { BOXOFFICE_SECRET: "from env" }),
      "from env",
    );
    const list: Setting<string[]> = { ...count, repeatable: true, parse: (text) => text.split(",") };
    assert.deepEqual(readSetting(list, { maxWidgets: ["a", "b"] }, {}), ["a", "b"]);
  });

  it("reads a whole table into one frozen object", () => {
    const config = readSettings(
      { widgets: count, gadgets: { ...count, flag: "gadgets", env: "G" } },
      {},
      { G: "2" },
    );
    assert.deepEqual(config, { widgets: 4, gadgets: 2 });
    assert.ok(Object.isFrozen(config));
  });
});
