/**
 * The balancer's own answers: RFC 9457 problem details with a stable `code`, as `../shared/api.md` asks.
 */
import type { FrontResponse } from "./front.js";

export type BalancerProblemCode =
  | "unavailable"
  | "backend_failed"
  | "backend_timeout"
  | "backend_not_found"
  | "backend_exists"
  | "invalid_request"
  | "unauthorized"
  | "not_found"
  | "method_not_allowed";

const TITLES: Record<BalancerProblemCode, string> = {
  unavailable: "Service unavailable",
  backend_failed: "Bad gateway",
  backend_timeout: "Gateway timeout",
  backend_not_found: "No such backend",
  backend_exists: "Backend already listed",
  invalid_request: "Invalid request",
  unauthorized: "Unauthorized",
  not_found: "Not found",
  method_not_allowed: "Method not allowed",
};

/** Sends a problem+json answer unless the response has already started (then the socket is cut). */
export function sendProblem(
  res: FrontResponse,
  status: number,
  code: BalancerProblemCode,
  detail: string,
  extraHeaders: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    type: `https://boxoffice.dev/problems/${code}`,
    title: TITLES[code],
    status,
    detail,
    code,
  });
  res.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}
