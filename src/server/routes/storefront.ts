/**
 * The storefront (src/web/storefront/): static HTML, one style sheet and a few ES modules, no bundler and
 * no server-side templating — the pages fill themselves from the public API with DOM text, so nothing a
 * seller or buyer typed is ever parsed as HTML. Served by every instance (and so through the balancer):
 *
 * - `GET /` — the events on sale;
 * - `GET /events/{eventId}` — an event: tickets or seats, holds, the waiting room;
 * - `GET /orders/{orderId}` — an order, opened by the secret in the link's fragment;
 * - `GET /storefront/{file}` — the script and style files.
 *
 * HTML, not part of the JSON API, so not in /openapi.json. Every answer has a strict Content-Security-
 * Policy (own scripts and styles only, no inline code, API calls to this origin only), nosniff, and
 * `Referrer-Policy: no-referrer` (an order page's address never leaves in a Referer).
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance, FastifyReply } from "fastify";

export const STOREFRONT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSET_DIR = new URL("../../web/storefront/", import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** The files a browser may fetch under /storefront/: a fixed list, never a path from the request. */
const ASSETS = ["api.js", "format.js", "list.js", "event.js", "order.js", "storefront.css"];
const PAGES = ["index.html", "event.html", "order.html"];

interface Asset {
  body: Buffer;
  type: string;
}

function load(name: string): Asset {
  const type = CONTENT_TYPES[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";
  return { body: readFileSync(new URL(name, ASSET_DIR)), type };
}

function send(reply: FastifyReply, asset: Asset, cacheControl: string): FastifyReply {
  return reply
    .type(asset.type)
    .header("content-security-policy", STOREFRONT_CSP)
    .header("x-content-type-options", "nosniff")
    .header("referrer-policy", "no-referrer")
    .header("cache-control", cacheControl)
    .send(asset.body);
}

export function registerStorefront(app: FastifyInstance): void {
  const files = new Map<string, Asset>([...ASSETS, ...PAGES].map((name) => [name, load(name)]));
  const page = (name: string) => {
    const asset = files.get(name) as Asset;
    return async (_request: unknown, reply: FastifyReply) => send(reply, asset, "no-store");
  };
  app.get("/", page("index.html"));
  app.get("/events/:eventId", page("event.html"));
  app.get("/orders/:orderId", page("order.html"));
  for (const name of ASSETS) {
    const asset = files.get(name) as Asset;
    // Short: a new release reaches every buyer within a minute.
    app.get(`/storefront/${name}`, async (_request, reply) => send(reply, asset, "public, max-age=60"));
  }
}
