/**
 * Reading HTTP/1.1 heads on the balancer's hot path. HeadLines walks the header lines of a head (request
 * or response) without splitting it: for each line, where its name, its value (without the optional
 * whitespace around it) and the line itself start and end, so that runs of lines can be passed on as one
 * slice. No string is made for a line unless asked for (`name`, `value`), and `kind()` tells the few
 * headers the balancer acts on from all others without making one either. The raw front (request heads)
 * and the raw client (response heads) both read heads with it.
 */

/** Hop-by-hop headers (RFC 9110 7.6.1): about one connection, never passed on by a proxy. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
]);

/** Request headers the balancer does not pass on: hop-by-hop ones, and those it sets or answers itself. */
export const NOT_FORWARDED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  "x-forwarded-for",
  "x-forwarded-proto",
  "expect",
]);

/** A request's header lines to pass on to an instance, made by the raw front as it reads the head. */
export interface RequestLines {
  /** Each ending in CRLF, as the client sent them; those in NOT_FORWARDED left out. */
  lines: string;
  /** The X-Forwarded-For values the client sent, joined; the balancer adds the client's address. */
  forwardedFor: string | undefined;
  /** That address (read once per connection). */
  clientIp: string;
  hasHost: boolean;
  hasLength: boolean;
  /** The request has an Idempotency-Key (it may be sent again after a failure). */
  hasIdempotencyKey: boolean;
  /** Its Accept asks for server-sent events. */
  wantsEvents: boolean;
  /**
   * The client's X-Request-Id when it is safe (http/request-id.ts); its line is then in `lines`. An
   * unsafe one, or a second one, is not passed on: the balancer makes an id instead.
   */
  requestId: string | undefined;
}

/** Connection header values that name no other header to drop. */
export const PLAIN_CONNECTION: ReadonlySet<string> = new Set(["keep-alive", "close"]);

/**
 * The headers the balancer reads or drops, as `HeadLines.kind()` tells them: OTHER for all the rest.
 * HOP for the hop-by-hop ones without a kind of their own; X_FORWARDED_PROTO is the balancer's to set.
 */
export const enum HeaderKind {
  OTHER,
  HOP,
  CONNECTION,
  TRANSFER_ENCODING,
  CONTENT_LENGTH,
  CONTENT_TYPE,
  HOST,
  EXPECT,
  ACCEPT,
  IDEMPOTENCY_KEY,
  X_FORWARDED_FOR,
  X_FORWARDED_PROTO,
  /** Proxy-Connection: hop-by-hop, and llhttp reads its close / keep-alive as Connection's. */
  PROXY_CONNECTION,
  X_REQUEST_ID,
}

/** Kinds that are hop-by-hop (HOP_BY_HOP). */
export function isHopByHop(kind: HeaderKind): boolean {
  return (
    kind === HeaderKind.HOP ||
    kind === HeaderKind.CONNECTION ||
    kind === HeaderKind.TRANSFER_ENCODING ||
    kind === HeaderKind.PROXY_CONNECTION
  );
}

/** Kinds of request headers the balancer does not pass on (NOT_FORWARDED). */
export function isNotForwarded(kind: HeaderKind): boolean {
  return (
    isHopByHop(kind) ||
    kind === HeaderKind.EXPECT ||
    kind === HeaderKind.X_FORWARDED_FOR ||
    kind === HeaderKind.X_FORWARDED_PROTO
  );
}

export class HeadLines {
  /** Where the current line starts in the head, and where it ends (before its CRLF). */
  lineStart = 0;
  lineEnd = 0;
  /** Where the current line's name ends (its colon), and where its trimmed value starts and ends. */
  nameEnd = 0;
  valueStart = 0;
  valueEnd = 0;
  /** A line had no name before its colon (or no colon): the head is malformed. */
  malformed = false;
  readonly #head: string;
  #at: number;

  /** `head` without its final CRLF CRLF; `start`: where the first header line begins. */
  constructor(head: string, start: number) {
    this.#head = head;
    this.#at = start;
  }

  /** Moves to the next header line; false at the end of the head or on a malformed line. */
  next(): boolean {
    const head = this.#head;
    const start = this.#at;
    if (start >= head.length) return false;
    let end = head.indexOf("\r\n", start);
    if (end === -1) end = head.length;
    const colon = head.indexOf(":", start);
    if (colon <= start || colon > end) {
      this.malformed = true;
      return false;
    }
    let from = colon + 1;
    let to = end;
    while (from < to && isSpace(head.charCodeAt(from))) from++;
    while (to > from && isSpace(head.charCodeAt(to - 1))) to--;
    this.lineStart = start;
    this.lineEnd = end;
    this.nameEnd = colon;
    this.valueStart = from;
    this.valueEnd = to;
    this.#at = end + 2;
    return true;
  }

  /** The current line's header name, as sent. */
  get name(): string {
    return this.#head.slice(this.lineStart, this.nameEnd);
  }

  /** The current line's value, without leading or trailing spaces and tabs. */
  get value(): string {
    return this.#head.slice(this.valueStart, this.valueEnd);
  }

  /** What the current header is to the balancer, from its name in any case. */
  kind(): HeaderKind {
    // By length first: most names are ruled out without reading them.
    switch (this.nameEnd - this.lineStart) {
      case 2:
        return this.#nameIs("te") ? HeaderKind.HOP : HeaderKind.OTHER;
      case 4:
        return this.#nameIs("host") ? HeaderKind.HOST : HeaderKind.OTHER;
      case 6:
        if (this.#nameIs("expect")) return HeaderKind.EXPECT;
        return this.#nameIs("accept") ? HeaderKind.ACCEPT : HeaderKind.OTHER;
      case 7:
        return this.#nameIs("upgrade") || this.#nameIs("trailer") ? HeaderKind.HOP : HeaderKind.OTHER;
      case 10:
        if (this.#nameIs("connection")) return HeaderKind.CONNECTION;
        return this.#nameIs("keep-alive") ? HeaderKind.HOP : HeaderKind.OTHER;
      case 12:
        if (this.#nameIs("content-type")) return HeaderKind.CONTENT_TYPE;
        return this.#nameIs("x-request-id") ? HeaderKind.X_REQUEST_ID : HeaderKind.OTHER;
      case 14:
        return this.#nameIs("content-length") ? HeaderKind.CONTENT_LENGTH : HeaderKind.OTHER;
      case 15:
        if (this.#nameIs("x-forwarded-for")) return HeaderKind.X_FORWARDED_FOR;
        return this.#nameIs("idempotency-key") ? HeaderKind.IDEMPOTENCY_KEY : HeaderKind.OTHER;
      case 16:
        return this.#nameIs("proxy-connection") ? HeaderKind.PROXY_CONNECTION : HeaderKind.OTHER;
      case 17:
        if (this.#nameIs("transfer-encoding")) return HeaderKind.TRANSFER_ENCODING;
        return this.#nameIs("x-forwarded-proto") ? HeaderKind.X_FORWARDED_PROTO : HeaderKind.OTHER;
      case 18:
        return this.#nameIs("proxy-authenticate") ? HeaderKind.HOP : HeaderKind.OTHER;
      case 19:
        return this.#nameIs("proxy-authorization") ? HeaderKind.HOP : HeaderKind.OTHER;
      default:
        return HeaderKind.OTHER;
    }
  }

  /** Whether the current name is `lower` (lower case, as long as the name) in any case. */
  #nameIs(lower: string): boolean {
    const head = this.#head;
    const start = this.lineStart;
    for (let index = 0; index < lower.length; index++) {
      const sent = head.charCodeAt(start + index);
      const wanted = lower.charCodeAt(index);
      // Only a letter may differ, and only by case (a-z is A-Z + 32).
      if (sent !== wanted && (wanted < 97 || wanted > 122 || sent !== wanted - 32)) return false;
    }
    return true;
  }
}

/** SP or HTAB, the only whitespace HTTP allows around a header value. */
function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}
