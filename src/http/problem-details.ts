/**
 * RFC 9457 problem details, built and written one way by every HTTP surface: the instance (through
 * Fastify), the balancer (through its fronts, or as raw text on a socket) and the cluster's control
 * server. Each component keeps its own registry of codes and titles; this module knows no code, only
 * the shape, the documented `type` URI (docs/api.md) and how an answer is put on the wire.
 */
import { STATUS_CODES, type OutgoingHttpHeaders } from "node:http";
import type { FastifyReply } from "fastify";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** The members in the order every answer writes them; a component may add its own after `code`. */
export interface ProblemDetails<Code extends string = string> {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: Code;
}

/** A stable URI per code, as docs/api.md shows it: `https://boxoffice.dev/problems/seats-unavailable`. */
export function problemType(code: string): string {
  return `https://boxoffice.dev/problems/${code.replaceAll("_", "-")}`;
}

export function problemDetails<Code extends string>(
  status: number,
  code: Code,
  title: string,
  detail: string,
): ProblemDetails<Code> {
  return { type: problemType(code), title, status, detail, code };
}

/** Sends `problem` through Fastify; `retryAfterSeconds` adds Retry-After. */
export function replyProblem(
  reply: FastifyReply,
  problem: ProblemDetails,
  retryAfterSeconds?: number,
): FastifyReply {
  if (retryAfterSeconds !== undefined) reply.header("retry-after", String(retryAfterSeconds));
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

/** What writeProblem needs of a response: Node's ServerResponse and the balancer's fronts have it. */
export interface ProblemResponse {
  readonly headersSent: boolean;
  writeHead(statusCode: number, headers: OutgoingHttpHeaders): unknown;
  end(body: string): unknown;
  destroy(): void;
}

/** Writes `problem` as the whole response, unless the response has already started (then it is cut). */
export function writeProblem(
  res: ProblemResponse,
  problem: ProblemDetails,
  extraHeaders: OutgoingHttpHeaders = {},
): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const body = JSON.stringify(problem);
  const bytes = Buffer.byteLength(body);
  res.writeHead(problem.status, {
    "content-type": PROBLEM_CONTENT_TYPE,
    "content-length": bytes,
    ...extraHeaders,
  });
  res.end(body);
  return bytes;
}

/**
 * A whole HTTP/1.1 answer that closes the connection, for a socket no HTTP response object stands for
 * (a request too malformed to read, a TCP client no instance can take). `headerLines`: more header
 * lines, each ending in CRLF, written after Content-Length.
 */
export function problemResponseText(problem: ProblemDetails, headerLines = ""): string {
  const body = JSON.stringify(problem);
  return (
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n` +
    `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `${headerLines}Connection: close\r\n\r\n${body}`
  );
}
