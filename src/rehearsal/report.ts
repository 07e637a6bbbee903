/**
 * The record of a rehearsal, written to a directory of its own:
 *
 * - `report.html`: one self-contained page (no script, no external asset) with the verdict, the
 *   verifier's checks, the totals and four charts as inline SVG: arrivals and admissions, sales, 503s
 *   and cut-offs, latency percentiles, each per second;
 * - `report.json`: the same raw figures (settings, totals, the per-second timeline, the verifier's
 *   report), and the name of the records file; `boxoffice rehearse --verify-only report.json` reads it;
 * - `records.jsonl`: every request's attempts, one ClientRecord a line: the verifier's evidence;
 * - `arrivals.svg`, `sales.svg`, `unavailable.svg`, `latency.svg`: the charts alone.
 */
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { createInterface } from "node:readline";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { finished } from "node:stream/promises";
import { dirname, join, resolve } from "node:path";
import type { ClientRecord } from "./client-log.js";
import type { SurgeEvent, SurgeResult } from "./surge.js";
import { escapeXml, svgChart } from "./svg-chart.js";
import type { Timeline, Totals } from "./timeline.js";
import { buildTimeline, buildTotals } from "./timeline.js";
import type { VerifierReport } from "./verifier.js";

export const RECORDS_FILE = "records.jsonl";

/** report.json. */
export interface ReportFile {
  tool: "boxoffice rehearse";
  formatVersion: 1;
  verdict: "PASS" | "FAIL";
  url: string;
  startedAt: string;
  arrivalsEndedAt: string;
  endedAt: string;
  seed: number;
  runTag: string;
  /** The settings of the run (the admin token never). */
  settings: Record<string, unknown>;
  events: SurgeEvent[];
  totals: Totals;
  timeline: Timeline;
  verifier: VerifierReport;
  buyerErrors: string[];
  /** Relative to report.json. */
  recordsFile: string;
}

export interface WrittenReport {
  dir: string;
  html: string;
  json: string;
  records: string;
  charts: string[];
}

/** The charts of a timeline, by file name. */
export function reportCharts(timeline: Timeline): Record<string, string> {
  const x = timeline.seconds;
  const xLabel = "seconds from the start";
  return {
    "arrivals.svg": svgChart({
      title: "Buyers arriving and admitted, per second",
      xLabel,
      yLabel: "buyers / s",
      x,
      series: [
        { name: "arrivals", color: "#1f77b4", values: timeline.arrivals },
        { name: "admitted", color: "#2ca02c", values: timeline.admissions },
        { name: "turned away", color: "#d62728", values: timeline.turnedAway },
      ],
    }),
    "sales.svg": svgChart({
      title: "Sales per second",
      xLabel,
      yLabel: "per second",
      x,
      series: [
        { name: "tickets sold", color: "#2ca02c", values: timeline.tickets, style: "bars" },
        { name: "orders", color: "#1f77b4", values: timeline.orders },
      ],
    }),
    "unavailable.svg": svgChart({
      title: "503s and cut-off requests, per second",
      xLabel,
      yLabel: "attempts / s",
      x,
      series: [
        {
          name: "503 (retried with the same key)",
          color: "#ff7f0e",
          values: timeline.unavailable,
          style: "bars",
        },
        { name: "no answer (cut off)", color: "#d62728", values: timeline.cutOff, style: "bars" },
      ],
    }),
    "latency.svg": svgChart({
      title: "Latency of the attempts started each second",
      xLabel,
      yLabel: "milliseconds",
      x,
      series: [
        { name: "p50", color: "#2ca02c", values: timeline.p50Ms },
        { name: "p95", color: "#ff7f0e", values: timeline.p95Ms },
        { name: "p99", color: "#d62728", values: timeline.p99Ms },
      ],
    }),
  };
}

/** Builds report.json's content from a surge and its verification. */
export function buildReport(
  result: SurgeResult,
  verifier: VerifierReport,
  url: string,
  settings: Record<string, unknown>,
): ReportFile {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    tool: "boxoffice rehearse",
    formatVersion: 1,
    verdict: verifier.pass ? "PASS" : "FAIL",
    url,
    startedAt: iso(result.startedAtMs),
    arrivalsEndedAt: iso(result.arrivalsEndedAtMs),
    endedAt: iso(result.endedAtMs),
    seed: result.seed,
    runTag: result.runTag,
    settings,
    events: result.events,
    totals: buildTotals(result),
    timeline: buildTimeline(result),
    verifier,
    buyerErrors: result.buyerErrors.slice(0, 100),
    recordsFile: RECORDS_FILE,
  };
}

/** Writes the report's files into `outDir`/<start time>/ and says where. */
export async function writeReport(
  outDir: string,
  report: ReportFile,
  records: readonly ClientRecord[],
): Promise<WrittenReport> {
  const dir = resolve(outDir, report.startedAt.replace(/[:.]/g, "-"));
  await mkdir(dir, { recursive: true });
  const charts = reportCharts(report.timeline);
  const written: WrittenReport = {
    dir,
    html: join(dir, "report.html"),
    json: join(dir, "report.json"),
    records: join(dir, RECORDS_FILE),
    charts: [],
  };
  await writeLines(written.records, records);
  await writeFile(written.json, `${JSON.stringify(report, null, 2)}\n`);
  for (const [name, svg] of Object.entries(charts)) {
    const file = join(dir, name);
    await writeFile(file, `${svg}\n`);
    written.charts.push(file);
  }
  await writeFile(written.html, renderHtml(report, charts));
  return written;
}

/** One JSON line per record, streamed: a big run's records would not fit in one string. */
async function writeLines(file: string, records: readonly ClientRecord[]): Promise<void> {
  const stream = createWriteStream(file);
  for (const record of records) {
    if (!stream.write(`${JSON.stringify(record)}\n`)) await once(stream, "drain");
  }
  stream.end();
  await finished(stream);
}

/** Reads an earlier run's report.json and its records, for --verify-only. */
export async function readReport(file: string): Promise<{ report: ReportFile; records: ClientRecord[] }> {
  const report = JSON.parse(await readFile(file, "utf8")) as ReportFile;
  if (report.tool !== "boxoffice rehearse" || report.formatVersion !== 1) {
    throw new Error(`${file} is not a report.json of boxoffice rehearse`);
  }
  const records: ClientRecord[] = [];
  const lines = createInterface({ input: createReadStream(resolve(dirname(file), report.recordsFile)) });
  for await (const line of lines) if (line.trim() !== "") records.push(JSON.parse(line) as ClientRecord);
  return { report, records };
}

function renderHtml(report: ReportFile, charts: Record<string, string>): string {
  const e = (value: unknown) => escapeXml(String(value));
  const pass = report.verdict === "PASS";
  const t = report.totals;
  const rows = (entries: [string, unknown][]) =>
    entries.map(([name, value]) => `<tr><th>${e(name)}</th><td>${e(value)}</td></tr>`).join("\n");
  const counted = (map: Record<string, number>) =>
    Object.entries(map)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => `${key}: ${value}`)
      .join(", ") || "none";
  const checks = report.verifier.checks
    .map(
      (check) =>
        `<tr class="${check.pass ? "pass" : "fail"}"><td>${check.pass ? "PASS" : "FAIL"}</td><th>${e(check.name)}</th><td>${e(check.detail)}</td></tr>`,
    )
    .join("\n");
  const events = report.events
    .map(
      (event) =>
        `<tr><td><code>${e(event.id)}</code></td><td>${e(event.name)}</td><td>${e(event.kind)}</td><td>${e(event.capacity)}</td><td>${event.created ? "created for the run" : "given"}</td><td>${e(event.door)}</td></tr>`,
    )
    .join("\n");
  const settings = Object.entries(report.settings).map(
    ([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v] as [string, unknown],
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rehearsal ${e(report.verdict)}: ${e(report.url)} at ${e(report.startedAt)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 980px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.verdict { display: inline-block; padding: 4px 14px; border-radius: 4px; color: #fff; font-weight: 700; }
.verdict.pass { background: #2a8a3a; } .verdict.fail { background: #c0392b; }
table { border-collapse: collapse; margin: 8px 0; } th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { font-weight: 600; } tr.fail td:first-child { color: #c0392b; font-weight: 700; } tr.pass td:first-child { color: #2a8a3a; }
figure { margin: 12px 0; } svg { max-width: 100%; height: auto; border: 1px solid #eee; }
code { font-size: 12px; }
</style>
</head>
<body>
<h1>On-sale rehearsal <span class="verdict ${pass ? "pass" : "fail"}">${e(report.verdict)}</span></h1>
<p>Against <code>${e(report.url)}</code>, from ${e(report.startedAt)} to ${e(report.endedAt)} (arrivals until ${e(report.arrivalsEndedAt)}); seed ${e(report.seed)}, run ${e(report.runTag)}.</p>

<h2>The verifier's checks</h2>
<table>
${checks}
</table>
<p>Verifier counts: ${e(counted(report.verifier.counts))}</p>

<h2>Totals</h2>
<table>
${rows([
  ["buyers arrived", t.buyers],
  ["turned away (too many under way)", t.turnedAway],
  ["admitted", t.admitted],
  ["requests (retries not counted)", t.requests],
  ["requests retried", t.retried],
  ["requests never answered", t.unanswered],
  ["orders confirmed (201)", t.ordersConfirmed],
  ["tickets sold", t.ticketsSold],
  ["attempts by status", counted(t.statuses)],
  ["answers by problem code", counted(t.codes)],
  ["attempts by instance", counted(t.instances)],
  [
    "latency p50 / p95 / p99 / max (ms)",
    `${t.latencyMs.p50} / ${t.latencyMs.p95} / ${t.latencyMs.p99} / ${t.latencyMs.max}`,
  ],
  ["arrivals let in late, p99 / max (ms)", `${t.arrivalLatenessMs.p99} / ${t.arrivalLatenessMs.max}`],
  ["buyer errors (in the rehearsal itself)", t.buyerErrors],
])}
</table>

<h2>Charts</h2>
${Object.values(charts)
  .map((svg) => `<figure>\n${svg}\n</figure>`)
  .join("\n")}

<h2>Events</h2>
<table>
<tr><th>id</th><th>name</th><th>kind</th><th>capacity</th><th></th><th>door</th></tr>
${events}
</table>

<h2>Settings</h2>
<table>
${rows(settings)}
</table>
<p>Raw figures: <code>report.json</code>; every request: <code>${e(report.recordsFile)}</code>.</p>
</body>
</html>
`;
}
