/**
 * `boxoffice rehearse`: an on-sale surge against any boxoffice URL (a staging cluster, or `boxoffice
 * up` on a laptop), then the verifier's checks of what the system says against what the buyers were
 * told, a PASS or FAIL on stdout, and a report (HTML with charts, JSON, every request). Exit code 0 on
 * PASS, 1 on FAIL, 2 on a bad setting, 3 when the rehearsal could not run at all (no answer, no token).
 *
 * `--verify-only <report.json>` sends no buyer: it checks the system as it is now against an earlier
 * run's records, e.g. after a restore from backup, or in the test that plants an inconsistency.
 */
import type { Command } from "commander";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ConfigError } from "../domain/errors.js";
import { REHEARSAL_SETTINGS, loadRehearsalConfig, type RehearsalConfig } from "../config/rehearsal-config.js";
import type { FlagValues } from "../config/settings.js";
import type { VerifierReport, VerifyOptions } from "../rehearsal/verifier.js";
import { addSettingOptions } from "./setting-options.js";

export function registerRehearseCommand(program: Command): void {
  addSettingOptions(
    program
      .command("rehearse")
      .description(
        "rehearse an on-sale against a boxoffice URL: a surge of buyers, then a verifier; PASS or FAIL, and a report",
      ),
    REHEARSAL_SETTINGS,
  ).action(async (flags: FlagValues) => {
    const config = loadRehearsalConfig(flags);
    if (config.adminToken === null) {
      throw new ConfigError(
        "BOXOFFICE_ADMIN_TOKEN must hold the cluster's admin token (the verifier reads with it)",
      );
    }
    const code = config.verifyOnly
      ? await verifyOnly(config, config.verifyOnly, config.adminToken)
      : await rehearse(config, config.adminToken);
    process.exit(code);
  });
}

/** The command's own lines: plain text for the person (or the CI job) that ran it, not logs. */
const say = (message: string) => console.log(`rehearse: ${message}`);

async function rehearse(config: RehearsalConfig, adminToken: string): Promise<number> {
  // Loaded here so that `boxoffice server` and `lb` never load the rehearsal.
  const { runSurge, SetupError } = await import("../rehearsal/surge.js");
  const { ProgressLine } = await import("../rehearsal/progress.js");
  const { verify } = await import("../rehearsal/verifier.js");
  const { buildReport, writeReport } = await import("../rehearsal/report.js");

  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    console.error(
      "\nrehearse: stopping arrivals; the buyers under way finish, then the verifier runs (Ctrl-C again quits)",
    );
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  const progress = new ProgressLine(process.stderr);
  say(
    `${config.url}: ${config.rate} buyers/s after a ${config.rampSeconds}s ramp, for ${config.durationSeconds}s` +
      (config.buyers > 0 ? ` or ${config.buyers} buyers` : ""),
  );
  let result;
  try {
    result = await runSurge(config, { progress: (figures) => progress.update(figures), signal: stop.signal });
  } catch (error) {
    progress.finish();
    if (error instanceof SetupError) {
      console.error(`rehearse: could not set up: ${error.message}`);
      return 3;
    }
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
  }
  progress.finish();
  say(`events: ${result.events.map((event) => `${event.id} (${event.kind}, ${event.capacity})`).join(", ")}`);
  say(`verifying ${result.records.length} attempts against ${config.url} …`);
  const verifier = await verifyOrFail(verify, {
    baseUrl: config.url,
    adminToken,
    eventIds: result.events.map((event) => event.id),
    records: result.records,
    ...(config.instanceUrls.length > 0 ? { instanceUrls: config.instanceUrls } : {}),
  });
  const report = buildReport(result, verifier, config.url, settingsOf(config));
  const written = await writeReport(config.out, report, result.records);
  const t = report.totals;
  printChecks(verifier);
  say(
    `${report.verdict}: buyers ${t.buyers}, orders ${t.ordersConfirmed}, tickets sold ${t.ticketsSold}, ` +
      `requests ${t.requests} (${t.retried} retried, ${t.unanswered} never answered), ` +
      `503s ${t.statuses["503"] ?? 0}, cut off ${t.statuses.none ?? 0}, ` +
      `latency p50/p99 ${t.latencyMs.p50}/${t.latencyMs.p99} ms`,
  );
  say(`report: ${written.html}`);
  say(`figures: ${written.json}`);
  return verifier.pass ? 0 : 1;
}

async function verifyOnly(config: RehearsalConfig, file: string, adminToken: string): Promise<number> {
  const { readReport } = await import("../rehearsal/report.js");
  const { verify } = await import("../rehearsal/verifier.js");
  let earlier;
  try {
    earlier = await readReport(file);
  } catch (error) {
    console.error(`rehearse: cannot read ${file}: ${(error as Error).message}`);
    return 3;
  }
  const { report, records } = earlier;
  say(`verifying ${records.length} attempts of the run of ${report.startedAt} against ${report.url} …`);
  const verifier = await verifyOrFail(verify, {
    baseUrl: report.url,
    adminToken,
    eventIds: report.events.map((event) => event.id),
    records,
    ...(config.instanceUrls.length > 0 ? { instanceUrls: config.instanceUrls } : {}),
  });
  printChecks(verifier);
  const verdict = verifier.pass ? "PASS" : "FAIL";
  const out = join(dirname(file), `verify-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  await writeFile(
    out,
    `${JSON.stringify({ verdict, verifiedAt: new Date().toISOString(), verifier }, null, 2)}\n`,
  );
  say(
    `${verdict}: ${Object.entries(verifier.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  say(`written: ${out}`);
  return verifier.pass ? 0 : 1;
}

/**
 * The verifier's report, or a FAIL when it could not finish (the system stopped answering its reads): a
 * rehearsal whose outcome cannot be checked has not passed, and its report is still written.
 */
async function verifyOrFail(
  verify: (options: VerifyOptions) => Promise<VerifierReport>,
  options: VerifyOptions,
): Promise<VerifierReport> {
  try {
    return await verify(options);
  } catch (error) {
    return {
      pass: false,
      checks: [
        {
          name: "verifier-finished",
          pass: false,
          detail: `the verifier could not finish: ${(error as Error).message}`,
        },
      ],
      counts: { records: options.records.length },
    };
  }
}

function printChecks(verifier: { checks: { name: string; pass: boolean; detail: string }[] }): void {
  for (const check of verifier.checks) {
    console.log(`  ${check.pass ? "PASS" : "FAIL"}  ${check.name}: ${check.detail}`);
  }
}

/** The settings as the report shows them: everything but the admin token. */
function settingsOf(config: RehearsalConfig): Record<string, unknown> {
  const { adminToken: _token, ...rest } = config;
  return rest;
}
