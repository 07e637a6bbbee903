/**
 * The one place that decides what a client's request head means to the balancer: a pure function from
 * the head's text to its method, origin-form target, body framing, keep-alive, and the header lines to
 * pass on to an instance. Both fronts use it: the raw front on the bytes it read, the node front on the
 * head llhttp already parsed (rebuilt as text), so that the rules below hold whichever front is in use.
 *
 * It accepts only what Node's own parser (llhttp, strict mode) accepts and frames it the same way; where
 * it is stricter it says why in REFUSED_ON_PURPOSE, which the differential test
 * (test/unit/balancer/front-differential.test.ts) holds it to.
 */
import { METHODS } from "node:http";
import { isSafeRequestId } from "../http/request-id.js";
import { HeadLines, HeaderKind, isNotForwarded, type RequestLines } from "./head-lines.js";

/** A request the balancer refuses before it reaches any instance: 400, 431, or 501. */
export class BadRequest extends Error {
  readonly code = "FRONT_BAD_REQUEST";
  constructor(
    readonly status: 400 | 431 | 501,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Where the balancer refuses what llhttp accepts, and why (named in the refusal's detail, so the
 * differential test can tell a deliberate refusal from a disagreement).
 */
export const REFUSED_ON_PURPOSE = {
  method: "method not proxied",
  /** HTTP/0.9 (no version), HTTP/2.0 and RTSP request lines, which llhttp reads. */
  version: "unsupported HTTP version",
  requestLine: "more than one space in the request line",
  asteriskTarget: "asterisk-form target not proxied",
  badAuthority: "bad absolute-form target",
  transferCoding: "unsupported transfer-encoding",
  http10Chunked: "transfer-encoding in an HTTP/1.0 request",
  duplicateHost: "more than one Host header",
  badHost: "invalid Host header",
  noHost: "no Host header",
  hugeLength: "content-length too large",
  connectionNamesFraming: "Connection names a header the balancer needs",
  hugeChunk: "chunk size too large",
  chunkExtension: "bad chunk extension",
  trailers: "trailers too large",
} as const;

/** Methods the balancer passes on. The others llhttp knows (CONNECT, TRACE, WebDAV's) get 501. */
export const PROXIED_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
]);

/**
 * The request line: a token method, one space, a target of visible ASCII only (no control byte, no
 * space, no byte over 0x7e, as llhttp's strict URL parser), one space, HTTP/1.0 or HTTP/1.1.
 */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
/**
 * A head's header lines, from `lastIndex` to its end: a token name, a colon, and a value of HTAB, visible
 * ASCII and obs-text only (llhttp refuses every other control byte, DEL included).
 */
const HEADER_LINES = /(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*(?:\r\n|$))*$/y;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** uri-host [ ":" port ]: an IP literal, or reg-name / IPv4 characters (RFC 3986), no userinfo. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?$/;
/** Decimal digits of a length, at most 15 of them after leading zeros (2^53 is 16 digits). */
const MAX_LENGTH_DIGITS = 15;

/** What a request head means to the balancer. */
export interface RequestHead {
  method: string;
  /** Origin-form (an absolute-form target is turned into it, its authority becoming the Host). */
  url: string;
  http11: boolean;
  /** Whether the connection may carry another request after this one. */
  keepAlive: boolean;
  /** The body's length (0 when chunked or none). */
  length: number;
  chunked: boolean;
  /** An HTTP/1.1 client that waits for `100 Continue` before it sends the body. */
  expectsContinue: boolean;
  /** Where the header lines start in the head. */
  headersStart: number;
  forward: RequestLines;
}

/** Why a head's header lines failed HEADER_LINES, line by line (only for a head that did). */
function whyBadHeaders(head: string, start: number): BadRequest {
  const lines = new HeadLines(head, start);
  while (lines.next()) {
    if (!TOKEN.test(lines.name)) return new BadRequest(400, "bad header name");
    if (BAD_VALUE.test(head.slice(lines.nameEnd + 1, lines.lineEnd)))
      return new BadRequest(400, "bad header value");
  }
  return new BadRequest(400, "bad header line");
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * Whether the value of the current line ends without a trailing HTAB: llhttp takes trailing spaces after
 * Content-Length and Transfer-Encoding but not tabs.
 */
function endsWithoutTab(head: string, lines: HeadLines): boolean {
  for (let at = lines.valueEnd; at < lines.lineEnd; at++) if (head.charCodeAt(at) === 9) return false;
  return true;
}

/** The Connection header's tokens, lower case, SP/HTAB around each dropped (a comma list, RFC 9110 5.6.1). */
function connectionTokens(value: string): string[] {
  const lower = value.toLowerCase();
  if (lower === "keep-alive" || lower === "close") return [lower];
  const tokens: string[] = [];
  for (const part of lower.split(",")) {
    let from = 0;
    let to = part.length;
    while (from < to && isSpace(part.charCodeAt(from))) from++;
    while (to > from && isSpace(part.charCodeAt(to - 1))) to--;
    if (to > from) tokens.push(part.slice(from, to));
  }
  return tokens;
}

/** Headers a Connection header may not name: dropping them would change the request's framing or target. */
const NOT_DROPPABLE: ReadonlySet<string> = new Set(["host", "content-length", "transfer-encoding"]);

/**
 * Parses a request head (without its final CRLF CRLF); throws BadRequest. `clientIp` is the client's
 * address (put in the forwarded lines).
 */
export function parseRequestHead(head: string, clientIp: string): RequestHead {
  let lineEnd = head.indexOf("\r\n");
  if (lineEnd === -1) lineEnd = head.length;
  const match = REQUEST_LINE.exec(head.slice(0, lineEnd));
  if (!match) throw whyBadRequestLine(head.slice(0, lineEnd));
  const method = match[1]!;
  let url = match[2]!;
  // CONNECT, TRACE, WebDAV's and unknown methods: never passed on.
  if (!PROXIED_METHODS.has(method)) throw new BadRequest(501, REFUSED_ON_PURPOSE.method);
  let authority: string | undefined;
  if (url.charCodeAt(0) !== 47 /* / */) {
    // "*" (OPTIONS to the server itself), and what llhttp reads as such ("*" then anything).
    if (url.charCodeAt(0) === 42) throw new BadRequest(400, REFUSED_ON_PURPOSE.asteriskTarget);
    // Absolute-form: the authority replaces any Host (RFC 9112 3.2.2); the instance gets origin-form.
    const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
    if (!absolute) {
      if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) throw new BadRequest(400, REFUSED_ON_PURPOSE.badAuthority);
      throw new BadRequest(400, "bad request target");
    }
    authority = absolute[1]!;
    if (!HOST.test(authority)) throw new BadRequest(400, REFUSED_ON_PURPOSE.badAuthority);
    const rest = absolute[2]!;
    url = rest.startsWith("/") ? rest : `/${rest}`;
  }
  const http11 = match[3] === "1";
  const headersStart = lineEnd + 2;
  // Every header line checked at once; the reason is looked for only when the check fails.
  if (headersStart < head.length) {
    HEADER_LINES.lastIndex = headersStart;
    if (!HEADER_LINES.test(head)) throw whyBadHeaders(head, headersStart);
  }
  let length = -1;
  let lengthCanonical = true;
  let transferEncoding: string | undefined;
  let forward = "";
  let runStart = headersStart;
  let forwardedFor: string | undefined;
  let listed: string[] | undefined;
  let close = false;
  let keepAliveAsked = false;
  let hosts = 0;
  let hasIdempotencyKey = false;
  let wantsEvents = false;
  let expectsContinue = false;
  let requestId: string | undefined;
  const lines = new HeadLines(head, headersStart);
  while (lines.next()) {
    const kind = lines.kind();
    if (kind === HeaderKind.OTHER) continue;
    let dropped = isNotForwarded(kind);
    switch (kind) {
      case HeaderKind.CONTENT_LENGTH: {
        // llhttp refuses a second Content-Length even when it repeats the first.
        if (length !== -1) throw new BadRequest(400, "more than one content-length");
        const value = lines.value;
        if (value === "" || !endsWithoutTab(head, lines) || !/^\d+$/.test(value))
          throw new BadRequest(400, "bad content-length");
        let first = 0;
        while (first < value.length - 1 && value.charCodeAt(first) === 48) first++;
        if (value.length - first > MAX_LENGTH_DIGITS)
          throw new BadRequest(400, REFUSED_ON_PURPOSE.hugeLength);
        length = Number(value);
        // Passed on only as `name: digits` exactly; anything else is replaced by a normalised line.
        lengthCanonical =
          first === 0 &&
          lines.valueEnd === lines.lineEnd &&
          lines.valueStart === lines.nameEnd + (head.charCodeAt(lines.nameEnd + 1) === 32 ? 2 : 1);
        dropped = !lengthCanonical;
        break;
      }
      case HeaderKind.TRANSFER_ENCODING:
        if (transferEncoding !== undefined) throw new BadRequest(501, REFUSED_ON_PURPOSE.transferCoding);
        if (!endsWithoutTab(head, lines)) throw new BadRequest(400, REFUSED_ON_PURPOSE.transferCoding);
        transferEncoding = lines.value;
        break;
      case HeaderKind.CONNECTION:
        for (const token of connectionTokens(lines.value)) {
          if (token === "close") close = true;
          else if (token === "keep-alive") keepAliveAsked = true;
          else {
            if (NOT_DROPPABLE.has(token))
              throw new BadRequest(400, REFUSED_ON_PURPOSE.connectionNamesFraming);
            (listed ??= []).push(token);
          }
        }
        break;
      case HeaderKind.PROXY_CONNECTION:
        for (const token of connectionTokens(lines.value)) {
          if (token === "close") close = true;
          else if (token === "keep-alive") keepAliveAsked = true;
        }
        break;
      case HeaderKind.X_FORWARDED_FOR:
        forwardedFor = forwardedFor === undefined ? lines.value : `${forwardedFor}, ${lines.value}`;
        break;
      case HeaderKind.HOST:
        if (++hosts > 1) throw new BadRequest(400, REFUSED_ON_PURPOSE.duplicateHost);
        if (!HOST.test(lines.value)) throw new BadRequest(400, REFUSED_ON_PURPOSE.badHost);
        // The absolute-form target's authority is the Host that goes on.
        if (authority !== undefined) dropped = true;
        break;
      case HeaderKind.IDEMPOTENCY_KEY:
        hasIdempotencyKey = true;
        break;
      case HeaderKind.ACCEPT:
        if (lines.value.includes("text/event-stream")) wantsEvents = true;
        break;
      case HeaderKind.EXPECT:
        if (http11 && lines.value.toLowerCase() === "100-continue") expectsContinue = true;
        break;
      case HeaderKind.X_REQUEST_ID: {
        // The first safe one goes on; any other is dropped and the balancer makes one instead.
        const value = lines.value;
        if (requestId === undefined && isSafeRequestId(value)) requestId = value;
        else dropped = true;
        break;
      }
    }
    if (dropped) {
      forward += head.slice(runStart, lines.lineStart);
      runStart = lines.lineEnd + 2;
    }
  }
  if (lines.malformed) throw new BadRequest(400, "bad header line");
  if (http11 && hosts === 0 && authority === undefined) throw new BadRequest(400, REFUSED_ON_PURPOSE.noHost);
  let chunked = false;
  if (transferEncoding !== undefined) {
    // Exactly one `Transfer-Encoding: chunked` line is taken (llhttp also takes an empty value, other
    // codings before chunked, and some repeated lines).
    if (transferEncoding.toLowerCase() !== "chunked") throw whyBadTransferEncoding(transferEncoding);
    // Both framings at once is the classic request-smuggling shape: refuse it.
    if (length !== -1) throw new BadRequest(400, "both content-length and transfer-encoding");
    if (!http11) throw new BadRequest(400, REFUSED_ON_PURPOSE.http10Chunked);
    chunked = true;
  }
  if (runStart < head.length) forward += `${head.slice(runStart)}\r\n`;
  if (!lengthCanonical) forward += `content-length: ${length}\r\n`;
  if (authority !== undefined) forward += `host: ${authority}\r\n`;
  if (listed !== undefined) {
    // Connection names more headers to drop (rare): they are neither passed on nor acted on.
    forward = withoutListed(forward, listed);
    if (listed.includes("idempotency-key")) hasIdempotencyKey = false;
    if (listed.includes("accept")) wantsEvents = false;
    if (listed.includes("x-forwarded-for")) forwardedFor = undefined;
    if (listed.includes("x-request-id")) requestId = undefined;
  }
  return {
    method,
    url,
    http11,
    keepAlive: !close && (http11 || keepAliveAsked),
    length: Math.max(length, 0),
    chunked,
    expectsContinue,
    headersStart,
    forward: {
      lines: forward,
      forwardedFor,
      clientIp,
      hasHost: hosts > 0 || authority !== undefined,
      hasLength: length !== -1,
      hasIdempotencyKey,
      wantsEvents,
      requestId,
    },
  };
}

/** Header lines (each ending in CRLF) without those whose names are in `listed` (lower case). */
function withoutListed(lines: string, listed: readonly string[]): string {
  let kept = "";
  const walk = new HeadLines(lines, 0);
  while (walk.next()) {
    if (!listed.includes(walk.name.toLowerCase())) kept += `${lines.slice(walk.lineStart, walk.lineEnd)}\r\n`;
  }
  return kept;
}

function whyBadRequestLine(line: string): BadRequest {
  // Named only where llhttp would take the line: a known method, a clean target, some other version or
  // more than one space between the parts.
  // A method llhttp knows but the balancer never passes on is refused as such, whatever follows it.
  const method = /^[A-Z]+(?= )/.exec(line)?.[0];
  if (method !== undefined && !PROXIED_METHODS.has(method) && METHODS.includes(method))
    return new BadRequest(501, REFUSED_ON_PURPOSE.method);
  // HTTP/0.9: a method and a target, ended by CRLF or a bare LF.
  if (/^[A-Z]+ +[\x21-\x7e]+(?:$|\n)/.test(line)) return new BadRequest(400, REFUSED_ON_PURPOSE.version);
  const parts = /^[A-Z]+ +[\x21-\x7e]+ +((?:HTTP|RTSP)\/\d\.\d)$/.exec(line);
  if (parts === null) return new BadRequest(400, "bad request line");
  if (parts[1] !== "HTTP/1.1" && parts[1] !== "HTTP/1.0")
    return new BadRequest(400, REFUSED_ON_PURPOSE.version);
  return new BadRequest(400, REFUSED_ON_PURPOSE.requestLine);
}

/**
 * A transfer coding list the balancer cannot pass on (only "chunked" alone is): 501 for codings it does
 * not apply, 400 for an empty value or one that is no list of tokens.
 */
function whyBadTransferEncoding(value: string): BadRequest {
  const codings = value.split(",").map((coding) => coding.replace(/^[ \t]+|[ \t]+$/g, ""));
  if (value === "") return new BadRequest(400, REFUSED_ON_PURPOSE.transferCoding);
  if (codings.every((coding) => coding === "" || TOKEN.test(coding)))
    return new BadRequest(501, REFUSED_ON_PURPOSE.transferCoding);
  return new BadRequest(400, REFUSED_ON_PURPOSE.transferCoding);
}
