/** Talking to a running instance from a benchmark: one JSON (or /metrics text) call on a keep-alive pool. */
import type { Pool } from "undici";
import { E2E_ADMIN_TOKEN } from "../test/support/server-process.js";

/** Sends one request with the admin token; throws unless 2xx. `/metrics` comes back as text. */
export async function callInstance<T>(
  pool: Pool,
  method: "GET" | "POST",
  path: string,
  body?: object,
): Promise<T> {
  const response = await pool.request({
    method,
    path,
    headers: { "content-type": "application/json", authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) throw new Error(`${method} ${path}: ${response.statusCode} ${text}`);
  return (path === "/metrics" ? text : JSON.parse(text)) as T;
}
