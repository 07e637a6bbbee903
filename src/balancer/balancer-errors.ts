/**
 * The balancer's own answers: its registry of codes and titles. They are RFC 9457 problem details with a
 * stable `code`, built and written by the one writer every HTTP surface uses (http/problem-details.ts).
 */
import {
  problemDetails,
  problemResponseText,
  writeProblem,
  type ProblemDetails,
} from "../http/problem-details.js";
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
  | "not_implemented"
  | "payload_too_large";

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
  payload_too_large: "Content too large",
};

/** One of the balancer's own answers as problem details. */
export function balancerProblem(
  status: number,
  code: BalancerProblemCode,
  detail: string,
): ProblemDetails<BalancerProblemCode> {
  return problemDetails(status, code, TITLES[code], detail);
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
  return problemResponseText(balancerProblem(status, code, detail));
}

/**
 * Sends a problem+json answer unless the response has already started (then the socket is cut); returns
 * the body's bytes sent (0 when cut).
 */
export function sendProblem(
  res: FrontResponse,
  status: number,
  code: BalancerProblemCode,
  detail: string,
  extraHeaders?: Record<string, string>,
): number {
  return writeProblem(res, balancerProblem(status, code, detail), extraHeaders);
}
