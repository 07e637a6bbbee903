/**
 * The balancer's server side on Node's own HTTP server (`--front node`): llhttp parses each request; the
 * same rules as the raw front's (parseRequestHead, request-head.ts) then decide, on the head rebuilt from
 * its lines, what is refused and what goes on. Around it: pipelined requests served one at a time,
 * clients that do not read cut off, CONNECT and malformed requests answered as problem+json.
 */
import http from "node:http";
import type { Socket } from "node:net";
import { refusalText, sendProblem } from "./balancer-errors.js";
import { clientIp } from "./client-ip.js";
import {
  PIPELINE_WRITE_BOUND_BYTES,
  SendWatch,
  type Front,
  type FrontOptions,
  type FrontRequest,
} from "./front.js";
import type { RequestLines } from "./head-lines.js";
import { BadRequest, REFUSED_ON_PURPOSE, parseRequestHead, type RequestHead } from "./request-head.js";

/** Pipelined requests of one client held (read, not yet served) before reading stops. */
const PIPELINE_HELD_REQUESTS = 8;

const PROBLEM_CODES = {
  400: "invalid_request",
  431: "headers_too_large",
  501: "not_implemented",
} as const;

const CLIENT_ERROR_STATUS: Record<string, 408 | 431> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

export function createNodeFront(options: FrontOptions): Front {
  const checkEveryMs = Math.max(
    50,
    Math.min(1000, Math.floor(Math.min(options.headersTimeoutMs, options.clientSendTimeoutMs) / 4)),
  );
  /** Each client's pipeline: whether a request is being answered, and those held behind it. */
  const pipelines = new WeakMap<Socket, { busy: boolean; waiting: (() => void)[] }>();

  /**
   * The requests: llhttp parsed the head; the same rules as the raw front's (parseRequestHead) then
   * decide what is refused and what goes on, on the head rebuilt from its lines.
   */
  const onNodeRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let head = `${req.method ?? ""} ${req.url ?? ""} HTTP/${req.httpVersion}`;
    const raw = req.rawHeaders;
    for (let index = 0; index < raw.length; index += 2) head += `\r\n${raw[index]!}: ${raw[index + 1]!}`;
    let parsed: RequestHead;
    try {
      parsed = parseRequestHead(head, clientIp(req));
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      options.onClientError(String(error.status));
      res.shouldKeepAlive = false;
      sendProblem(res, error.status, PROBLEM_CODES[error.status], error.message, { connection: "close" });
      return;
    }
    req.url = parsed.url;
    (req as { forwardLines?: RequestLines }).forwardLines = parsed.forward;
    options.onRequest(req as http.IncomingMessage & FrontRequest, res);
  };

  /**
   * Serves a client's pipelined requests one at a time, the next only once the answers before it have
   * left the balancer's buffers (below PIPELINE_WRITE_BOUND_BYTES), as the raw front does: Node's server
   * reads every request of a pipeline that fits in one read and would answer them all into memory.
   * Reading from the client stops while more than a few wait.
   */
  const inTurn = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const socket = req.socket;
    let line = pipelines.get(socket);
    if (line === undefined) {
      line = { busy: false, waiting: [] };
      pipelines.set(socket, line);
      const held = line;
      socket.once("close", () => (held.waiting.length = 0));
    }
    const turn = line;
    const next = (): void => {
      if (turn.waiting.length === 0 || socket.destroyed) return;
      if (socket.writableLength > PIPELINE_WRITE_BOUND_BYTES) {
        socket.once("drain", next);
        return;
      }
      turn.waiting.shift()!();
      if (turn.waiting.length < PIPELINE_HELD_REQUESTS && socket.isPaused()) socket.resume();
    };
    const run = (): void => {
      turn.busy = true;
      // A ServerResponse emits "close" once it is done, whether it ended or its client went away.
      res.once("close", () => {
        turn.busy = false;
        next();
      });
      onNodeRequest(req, res);
    };
    if (!turn.busy && turn.waiting.length === 0) return run();
    turn.waiting.push(run);
    if (turn.waiting.length >= PIPELINE_HELD_REQUESTS) socket.pause();
  };

  const server = http.createServer(
    {
      maxHeaderSize: options.maxHeaderBytes,
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      keepAliveTimeout: options.clientKeepAliveMs,
      // How often Node looks for clients past headersTimeout/requestTimeout (its default is 30 s).
      connectionsCheckingInterval: checkEveryMs,
      // parseRequestHead refuses a missing Host itself, with a problem+json answer like every refusal.
      requireHostHeader: false,
    },
    inTurn,
  );
  server.maxConnections = options.maxClientConnections;
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    const code = error.code ?? "";
    const status = CLIENT_ERROR_STATUS[code] ?? 400;
    options.onClientError(code === "ECONNRESET" ? "reset" : String(status));
    // Node sets _httpMessage to null once a response is done with the socket (a client that closes after
    // a short answer): null and undefined both mean nothing was sent.
    const pending = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (code !== "ECONNRESET" && socket.writable && (pending == null || !pending.headersSent)) {
      socket.end(refusalText(status, error.message));
    }
    socket.destroy();
  });
  // CONNECT never reaches an instance (Node hands it over as a raw tunnel request).
  server.on("connect", (_req: http.IncomingMessage, socket: Socket) => {
    options.onClientError("501");
    socket.on("error", () => socket.destroy());
    socket.end(refusalText(501, REFUSED_ON_PURPOSE.method));
  });
  watchSends(server, options, checkEveryMs);
  return {
    server,
    closeIdleConnections: () => server.closeIdleConnections(),
    closeAllConnections: () => server.closeAllConnections(),
  };
}

/** Cuts off clients that take none of their response for `clientSendTimeoutMs`. */
function watchSends(server: http.Server, options: FrontOptions, checkEveryMs: number): void {
  const watched = new Map<Socket, SendWatch>();
  server.on("connection", (socket: Socket) => {
    watched.set(socket, new SendWatch());
    socket.once("close", () => watched.delete(socket));
  });
  const timeoutMs = options.clientSendTimeoutMs;
  const sweep = setInterval(() => {
    const nowMs = Date.now();
    for (const [socket, watch] of watched) {
      if (!watch.stalled(socket, nowMs, timeoutMs)) continue;
      options.onClientError("stalled");
      socket.destroy();
    }
  }, checkEveryMs);
  sweep.unref();
  server.once("close", () => clearInterval(sweep));
}
