/**
 * The operations dashboard's page (src/web/dashboard: HTML, a style sheet and two ES modules, no build
 * step), served by every instance at GET /dashboard, so that it is reached through the balancer like the
 * API it calls. The page itself holds no data: it asks for the admin token and reads everything with it.
 * HTML, not part of the JSON API, so not in /openapi.json.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { problemOf, sendProblem } from "../problem.js";

export const DASHBOARD_PATH = "/dashboard";
const ASSETS_PATH = "/dashboard/assets/";

/** Its own script and style only, talking to this origin only; no inline script, no framing. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSET_TYPES: Record<string, string> = {
  "dashboard.js": "text/javascript; charset=utf-8",
  "chart.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
};

/** The files, read once: they sit next to the compiled code (scripts/copy-assets.mjs puts them there). */
function readPage(): { html: string; assets: Map<string, string> } {
  const dir = new URL("../../web/dashboard/", import.meta.url);
  const html = readFileSync(new URL("index.html", dir), "utf8");
  const assets = new Map(
    Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(new URL(name, dir), "utf8")]),
  );
  return { html, assets };
}

export function registerDashboard(app: FastifyInstance): void {
  const page = readPage();
  const common = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
  };
  app.get(DASHBOARD_PATH, async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .headers({ ...common, "content-security-policy": DASHBOARD_CSP, "cache-control": "no-store" })
      .send(page.html),
  );
  app.get(`${ASSETS_PATH}:name`, async (request, reply) => {
    const { name } = request.params as { name: string };
    const text = Object.hasOwn(ASSET_TYPES, name) ? page.assets.get(name) : undefined;
    if (text === undefined) return sendProblem(reply, problemOf("not_found", "no such dashboard file"));
    return reply
      .type(ASSET_TYPES[name]!)
      .headers({ ...common, "cache-control": "no-cache" })
      .send(text);
  });
}
