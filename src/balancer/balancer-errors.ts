/**
 * The balancer's own answers: RFC 9457 problem details with a stable `code`, as docs/api.md describes them.
 */
import { STATUS_CODES } from "node:http";
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
  | "method_not_allowed"
  | "request_timeout"
  | "headers_too_large"
  | "not_implemented";

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
  request_timeout: "Request timeout",
  headers_too_large: "Request header fields too large",
  not_implemented: "Not implemented",
};

/** The problem+json body of one of the balancer's own answers. */
export function problemBody(status: number, code: BalancerProblemCode, detail: string): string {
  return JSON.stringify({
    type: `https://boxoffice.dev/problems/${code}`,
    title: TITLES[code],
    status,
    detail,
    code,
  });
}

/**
 * A whole HTTP/1.1 answer that closes the connection, for a client turned away before it made a request
 * the balancer could read (malformed, too large, too slow).
 */
export function refusalText(status: 400 | 408 | 431 | 501, detail: string): string {
  const code: BalancerProblemCode =
    status === 408
      ? "request_timeout"
      : status === 431
        ? "headers_too_large"
        : status === 501
          ? "not_implemented"
          : "invalid_request";
  const body = problemBody(status, code, detail);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\n` +
    `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

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
  const body = problemBody(status, code, detail);
  res.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}
