/**
 * Headless Chromium for the browser tests: Debian's `chromium` package (scripts/install-system-deps.sh
 * installs it) driven by playwright-core. On a developer's machine without it the suites that need it are
 * skipped with a clear reason; under CI=true a missing browser fails the run, never a skip.
 */
import { accessSync, constants } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM_PATH = process.env.BOXOFFICE_TEST_CHROMIUM ?? "/usr/bin/chromium";

/** `undefined` when Chromium is there, else the reason to skip; throws under CI=true. */
export function chromiumSkipReason(): string | undefined {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return undefined;
  } catch {
    const reason = `no Chromium at ${CHROMIUM_PATH} (install the chromium package, or set BOXOFFICE_TEST_CHROMIUM)`;
    if (process.env.CI === "true") throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
    console.log(`# SKIPPED: ${reason}`);
    return reason;
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}
