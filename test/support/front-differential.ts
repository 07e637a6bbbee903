/**
 * The raw front against Node's own parser (llhttp, the one `http.createServer` runs, in strict mode),
 * request by request: generated and mutated byte strings are read by both, and any request one accepts
 * and the other refuses, or that they frame differently (method, target, the header lines passed on,
 * body bytes, where the next request starts, keep-alive), is a disagreement. Where the raw front is
 * stricter on purpose it refuses with a reason named in REFUSED_ON_PURPOSE; only those are allowed.
 * Used by test/unit/balancer/front-differential.test.ts (a few thousand cases) and bench/front-fuzz.ts
 * (the long run).
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import { ChunkedBodyError, ChunkedDecoder } from "../../src/balancer/chunked-decoder.js";
import { HeadLines, NOT_FORWARDED } from "../../src/balancer/head-lines.js";
import { BadRequest, REFUSED_ON_PURPOSE, parseRequestHead } from "../../src/balancer/request-head.js";

export const MAX_HEADER_BYTES = 16_384;
const CRLF_CRLF = Buffer.from("\r\n\r\n");

/** One request as a parser framed it. */
export interface Framed {
  method: string;
  url: string;
  /** Header lines passed on, as "lower-case-name: value" sorted (order is not framing). */
  forwarded: string[];
  body: string;
  keepAlive: boolean;
  /** llhttp: the connection switches protocols after this request (it stops reading HTTP). */
  upgrade?: boolean;
}

/** What one parser made of a byte string: whole requests, then how it stopped. */
export interface Reading {
  requests: Framed[];
  /** "refused": with `reason`; "partial": wants more bytes; "done": nothing left (or closed). */
  end: "refused" | "partial" | "done";
  reason?: string;
  /** A request whose head was accepted but whose body was not whole or was refused. */
  headOnly?: Framed;
}

// Node's binding of llhttp (internal, stable since Node 12): what its http server feeds every socket to.
interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; reason?: string });
  [key: number]: unknown;
}
interface LlhttpBinding {
  HTTPParser: (new () => LlhttpParser) & {
    REQUEST: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnMessageBegin: number;
  };
  methods: string[];
}
const { HTTPParser, methods } = createRequire(import.meta.url)("_http_common") as LlhttpBinding;

/** The header lines a proxy passes on from `pairs`, as the raw front must: hop-by-hop and Connection-named dropped. */
function expectedForward(pairs: string[], url: string): { forwarded: string[]; url: string } {
  const listed = new Set<string>();
  for (let index = 0; index < pairs.length; index += 2) {
    if (pairs[index]!.toLowerCase() !== "connection") continue;
    for (const token of pairs[index + 1]!.split(","))
      listed.add(token.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase());
  }
  const forwarded: string[] = [];
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
  for (let index = 0; index < pairs.length; index += 2) {
    const lower = pairs[index]!.toLowerCase();
    let value = pairs[index + 1]!;
    if (NOT_FORWARDED.has(lower) || listed.has(lower)) continue;
    if (lower === "host" && absolute) continue;
    if (lower === "content-length") value = String(Number(value));
    forwarded.push(`${lower}: ${value}`);
  }
  if (absolute) {
    forwarded.push(`host: ${absolute[1]!}`);
    url = absolute[2]!.startsWith("/") ? absolute[2]! : `/${absolute[2]!}`;
  }
  return { forwarded: forwarded.sort(), url };
}

/** llhttp's reading of `input`, as Node's http server would get it on one connection. */
export function readWithLlhttp(input: Buffer): Reading {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {}, MAX_HEADER_BYTES, 0);
  const requests: Framed[] = [];
  let pairs: string[] = [];
  let url = "";
  let headersDone = false;
  let current: Framed | undefined;
  let body: Buffer[] = [];
  parser[HTTPParser.kOnMessageBegin] = () => {
    pairs = [];
    url = "";
    headersDone = false;
    current = undefined;
    body = [];
  };
  parser[HTTPParser.kOnHeaders] = (more: string[], moreUrl: string) => {
    // Called before the head is complete when it has many lines, and again for trailers (ignored).
    if (headersDone) return;
    pairs.push(...more);
    url += moreUrl;
  };
  parser[HTTPParser.kOnHeadersComplete] = (
    _major: number,
    _minor: number,
    headers: string[] | undefined,
    method: number,
    headUrl: string | undefined,
    _status: number,
    _message: string,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    if (headers) pairs.push(...headers);
    url += headUrl ?? "";
    headersDone = true;
    const expected = expectedForward(pairs, url);
    current = {
      method: methods[method]!,
      url: expected.url,
      forwarded: expected.forwarded,
      body: "",
      keepAlive,
      upgrade,
    };
    return 0;
  };
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => body.push(Buffer.from(chunk));
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (current === undefined) return;
    current.body = Buffer.concat(body).toString("latin1");
    requests.push(current);
    current = undefined;
  };
  const result = parser.execute(input);
  const headOnly = current;
  if (result instanceof Error) return { requests, end: "refused", reason: result.code ?? "", headOnly };
  const last = requests.at(-1);
  if (last !== undefined && (!last.keepAlive || last.upgrade)) return { requests, end: "done" };
  return {
    requests,
    end: headOnly === undefined && result === input.length && !headOnly ? "done" : "partial",
    headOnly,
  };
}

/**
 * The raw front's reading of `input` on one connection, with its own pieces (parseRequestHead,
 * ChunkedDecoder) in the order FrontConnection uses them: CR and LF bytes skipped before a head, the head up
 * to CRLF CRLF, then its body by Content-Length or chunked, then the next request if kept alive.
 */
export function readWithRawFront(input: Buffer): Reading {
  const requests: Framed[] = [];
  let offset = 0;
  for (;;) {
    while (input[offset] === 13 || input[offset] === 10) offset++;
    if (offset >= input.length) return { requests, end: "done" };
    const end = input.indexOf(CRLF_CRLF, offset);
    if (end === -1) {
      if (input.length - offset > MAX_HEADER_BYTES)
        return { requests, end: "refused", reason: "request head too large" };
      return { requests, end: "partial" };
    }
    if (end - offset > MAX_HEADER_BYTES)
      return { requests, end: "refused", reason: "request head too large" };
    let head;
    try {
      head = parseRequestHead(input.toString("latin1", offset, end), "127.0.0.1");
    } catch (error) {
      if (error instanceof BadRequest) return { requests, end: "refused", reason: error.message };
      throw error;
    }
    const framed: Framed = {
      method: head.method,
      url: head.url,
      forwarded: sortedLines(head.forward.lines),
      body: "",
      keepAlive: head.keepAlive,
    };
    offset = end + 4;
    if (head.chunked) {
      const decoder = new ChunkedDecoder(MAX_HEADER_BYTES);
      const pieces: Buffer[] = [];
      let bodyEnd: number;
      try {
        bodyEnd = decoder.feed(input.subarray(offset), (data) => pieces.push(Buffer.from(data)));
      } catch (error) {
        if (error instanceof ChunkedBodyError)
          return { requests, end: "refused", reason: error.message, headOnly: framed };
        throw error;
      }
      if (bodyEnd === -1) return { requests, end: "partial", headOnly: framed };
      framed.body = Buffer.concat(pieces).toString("latin1");
      offset += bodyEnd;
    } else if (head.length > 0) {
      if (input.length - offset < head.length) return { requests, end: "partial", headOnly: framed };
      framed.body = input.toString("latin1", offset, offset + head.length);
      offset += head.length;
    }
    requests.push(framed);
    if (!head.keepAlive) return { requests, end: "done" };
  }
}

function sortedLines(lines: string): string[] {
  const out: string[] = [];
  const walk = new HeadLines(lines, 0);
  while (walk.next()) out.push(`${walk.name.toLowerCase()}: ${walk.value}`);
  return out.sort();
}

const ON_PURPOSE: ReadonlySet<string> = new Set([
  ...Object.values(REFUSED_ON_PURPOSE),
  "request head too large",
]);

/** Why the two readings of `input` disagree, or undefined when they agree. */
export function disagreement(input: Buffer, readRaw = readWithRawFront): string | undefined {
  const llhttp = readWithLlhttp(input);
  const raw = readRaw(input);
  const count = Math.min(llhttp.requests.length, raw.requests.length);
  // llhttp hands a connection over to another protocol after an upgrade request; the front (which
  // passes no upgrade on) reads on as HTTP. Only what came before, and that head, are compared.
  const upgradedAt = llhttp.headOnly?.upgrade === true ? llhttp.requests.length : -1;
  for (let index = 0; index < count; index++) {
    const ours = raw.requests[index]!;
    const theirs = llhttp.requests[index]!;
    const { upgrade, ...framing } = theirs;
    if (ours.keepAlive && !theirs.keepAlive) return `request ${index}: raw keeps alive, llhttp closes`;
    // Closing where llhttp would keep alive is safe (the client opens a new connection).
    const same = JSON.stringify({ ...framing, keepAlive: ours.keepAlive }) === JSON.stringify(ours);
    if (!same)
      return `request ${index} framed differently:\n raw    ${JSON.stringify(ours)}\n llhttp ${JSON.stringify(framing)}`;
    if (upgrade || !theirs.keepAlive || !ours.keepAlive) return undefined;
  }
  if (upgradedAt !== -1 && upgradedAt === count) {
    const ours = raw.headOnly ?? raw.requests[count];
    if (ours === undefined)
      return raw.end === "refused" ? undefined : `request ${count}: llhttp upgrades, raw ${raw.end}`;
    const { upgrade: _upgrade, ...framing } = llhttp.headOnly!;
    if (
      JSON.stringify({ ...framing, body: "", keepAlive: true }) !==
      JSON.stringify({ ...ours, body: "", keepAlive: true })
    )
      return `head of upgrade request ${count} framed differently`;
    return undefined;
  }
  if (raw.requests.length < llhttp.requests.length) {
    // llhttp took a request whole that the raw front did not.
    if (raw.end === "refused" && ON_PURPOSE.has(raw.reason!)) return undefined;
    if (raw.end === "partial" && raw.headOnly === undefined) {
      // The raw front still waits for the end of a head (llhttp ended it early, e.g. an HTTP/0.9 line
      // with a bare LF): it must refuse that head once it ends, never take it.
      const ended = readRaw(Buffer.concat([input, CRLF_CRLF]));
      if (ended.requests.length === count && ended.end === "refused") return undefined;
    }
    return `request ${count}: llhttp accepts, raw ${raw.end} (${raw.reason ?? ""})`;
  }
  if (raw.requests.length > llhttp.requests.length) {
    return `request ${count}: raw accepts, llhttp ${llhttp.end} (${llhttp.reason ?? ""})`;
  }
  // The same whole requests; then how each stopped.
  if (raw.end === "refused" && llhttp.end !== "refused") {
    if (ON_PURPOSE.has(raw.reason!)) return undefined;
    return `request ${count}: raw refuses (${raw.reason!}), llhttp ${llhttp.end}`;
  }
  if (llhttp.end === "refused" && raw.end !== "refused") {
    // The raw front waiting for more bytes that llhttp already found bad is no acceptance, unless it
    // already accepted the head llhttp refused.
    if (raw.end === "partial" && (raw.headOnly === undefined || llhttp.headOnly !== undefined))
      return undefined;
    if (raw.end === "done") return undefined;
    return `request ${count}: llhttp refuses (${llhttp.reason!}), raw accepted the head`;
  }
  if (raw.headOnly !== undefined && llhttp.headOnly !== undefined) {
    const { upgrade: _upgrade, ...framing } = llhttp.headOnly;
    const ours = { ...raw.headOnly, keepAlive: framing.keepAlive };
    if (JSON.stringify({ ...framing, body: "" }) !== JSON.stringify({ ...ours, body: "" }))
      return `head of request ${count} framed differently:\n raw    ${JSON.stringify(ours)}\n llhttp ${JSON.stringify(framing)}`;
  }
  return undefined;
}

// ---- Generated requests ----

const METHOD_SAMPLES = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS"];
const ODD_METHODS = ["CONNECT", "TRACE", "PROPFIND", "PRI", "get", "FOO", "G ET"];
const TARGET_SAMPLES = ["/", "/v1/events/evt_1/orders", "/a?b=c&d=%20", "/a#frag", "/_lb/health"];
const ODD_TARGETS = [
  "*",
  "http://h.example/p?q",
  "HTTP://h.example:8080",
  "http://u@h/",
  "https://[::1]:8443/x",
  "ftp://h/x",
  "a",
  "//x",
  "/\x01",
  "/\x7f",
  "/\xff",
  "/a\tb",
  "/a b",
];
const VERSION_SAMPLES = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"];
const ODD_VERSIONS = ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "http/1.1", "RTSP/1.0", "HTTP/1.1 "];
const NAME_SAMPLES = [
  "Host",
  "host",
  "Content-Length",
  "Transfer-Encoding",
  "Connection",
  "Idempotency-Key",
  "Accept",
  "Expect",
  "X-Forwarded-For",
  "X-Forwarded-Proto",
  "Upgrade",
  "Keep-Alive",
  "TE",
  "Trailer",
  "Proxy-Connection",
  "X-A",
  "Content-Type",
];
const ODD_NAMES = ["Bad Name", "X{", "", " X", "X\t", "X\xff"];
const VALUE_SAMPLES = [
  "x",
  "h.example",
  "h.example:8080",
  "[::1]",
  "a b",
  "a/b",
  "",
  "0",
  "3",
  "003",
  " 3 ",
  "3\t",
  "\t3",
  "3, 3",
  "+3",
  "-1",
  "99999999999999999999",
  "chunked",
  "Chunked",
  " chunked ",
  "chunked\t",
  "\x0bchunked",
  "chunked\x0c",
  "\xa0chunked",
  "gzip, chunked",
  "chunked, gzip",
  "chunked, chunked",
  ",chunked",
  "identity",
  "close",
  "keep-alive",
  "Keep-Alive, X-A",
  "x, close",
  "closed",
  "idempotency-key",
  "host",
  "content-length",
  "upgrade",
  "websocket",
  "100-continue",
  "text/event-stream",
  "k1",
  "a\x01b",
  "a\x7fb",
  "a\xffb",
  "a\0b",
];
const LINE_ENDS = ["\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n"];

/** Mostly `usual`, sometimes `odd`. */
const mostly = <T>(usual: readonly T[], odd: readonly T[]) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...usual) },
    { weight: 1, arbitrary: fc.constantFrom(...odd) },
  );

const chunkedBody = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.string({ maxLength: 20 }),
        fc.constantFrom("", "", ";a=b", ";a", "; a", ';a="x y"', " ", "\t", ";"),
      ),
      {
        maxLength: 3,
      },
    ),
    fc.constantFrom("", "", "X-T: 1\r\n", "X T: 1\r\n", "A: \x01\r\n", " folded\r\n"),
    fc.constantFrom("0", "0", "00", "0 ", "000000000000000000"),
  )
  .map(([chunks, trailer, last]) => {
    let text = "";
    for (const [data, extension] of chunks) {
      const bytes = Buffer.from(data, "latin1");
      text += `${bytes.length.toString(16)}${extension}\r\n${bytes.toString("latin1")}\r\n`;
    }
    return `${text}${last}\r\n${trailer}\r\n`;
  });

const header = fc
  .tuple(
    fc.oneof(mostly(NAME_SAMPLES, ODD_NAMES), fc.stringMatching(/^[A-Za-z-]{1,12}$/)),
    mostly([": ", ":", ":  ", ": \t"], [" : ", ":\x0b"]),
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...VALUE_SAMPLES) },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    ),
    fc.constantFrom(...LINE_ENDS),
  )
  .map(([name, colon, value, end]) => `${name}${colon}${value}${end}`);

/** A request made of sampled parts, framed right or wrong. */
const request = fc
  .tuple(
    mostly(METHOD_SAMPLES, ODD_METHODS),
    mostly([" "], ["  ", "\t"]),
    fc.oneof(
      { weight: 4, arbitrary: mostly(TARGET_SAMPLES, ODD_TARGETS) },
      { weight: 1, arbitrary: fc.webPath() },
    ),
    mostly(VERSION_SAMPLES, ODD_VERSIONS),
    fc.constantFrom("Host: h\r\n", "Host: h\r\n", "Host: h\r\n", ""),
    fc.array(header, { maxLength: 5 }),
    fc.oneof(
      fc.constant({ framing: "", body: "" }),
      fc
        .string({ maxLength: 30 })
        .map((body) => ({ framing: `Content-Length: ${Buffer.byteLength(body, "latin1")}\r\n`, body })),
      chunkedBody.map((body) => ({ framing: "Transfer-Encoding: chunked\r\n", body })),
    ),
  )
  .map(
    ([method, space, target, version, host, headers, { framing, body }]) =>
      `${method}${space}${target} ${version}\r\n${host}${headers.join("")}${framing}\r\n${body}`,
  );

const INTERESTING_BYTES = [13, 10, 9, 32, 0, 11, 12, 127, 255, 160, 44, 59, 58, 48, 97, 34, 92];

/** One to three requests on one connection, then a few bytes mutated. */
export const connectionBytes = fc
  .tuple(
    fc.array(request, { minLength: 1, maxLength: 3 }),
    fc.constantFrom("", "", "", "\r\n"),
    fc.oneof(
      { weight: 2, arbitrary: fc.constant([]) },
      {
        weight: 1,
        arbitrary: fc.array(
          fc.tuple(
            fc.nat(),
            fc.constantFrom("insert", "replace", "delete"),
            fc.constantFrom(...INTERESTING_BYTES),
          ),
          { minLength: 1, maxLength: 2 },
        ),
      },
    ),
  )
  .map(([requests, between, mutations]) => {
    const bytes = [...Buffer.from(requests.join(between), "latin1")];
    for (const [at, how, byte] of mutations) {
      const index = at % (bytes.length + 1);
      if (how === "insert") bytes.splice(index, 0, byte);
      else if (how === "replace" && index < bytes.length) bytes[index] = byte;
      else if (how === "delete") bytes.splice(index, 1);
    }
    return Buffer.from(bytes);
  });
