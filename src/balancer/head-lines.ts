/**
 * Reading HTTP/1.1 heads on the balancer's hot path. HeadLines walks the header lines of a head (request
 * or response) without splitting it: for each line, its name and its value (without the optional
 * whitespace around it) are the only two strings made, and where the line starts and ends, so that runs
 * of lines can be passed on as one slice. The raw front (request heads) and the raw client (response
 * heads) both read heads with it.
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
  hasHost: boolean;
  hasLength: boolean;
}

/** Connection header values that name no other header to drop. */
export const PLAIN_CONNECTION: ReadonlySet<string> = new Set(["keep-alive", "close"]);

export class HeadLines {
  /** The current line's header name, as sent. */
  name = "";
  /** The current line's value, without leading or trailing spaces and tabs. */
  value = "";
  /** Where the current line starts in the head, and where it ends (before its CRLF). */
  lineStart = 0;
  lineEnd = 0;
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
    this.name = head.slice(start, colon);
    let from = colon + 1;
    let to = end;
    while (from < to && isSpace(head.charCodeAt(from))) from++;
    while (to > from && isSpace(head.charCodeAt(to - 1))) to--;
    this.value = head.slice(from, to);
    this.lineStart = start;
    this.lineEnd = end;
    this.#at = end + 2;
    return true;
  }
}

/** SP or HTAB, the only whitespace HTTP allows around a header value. */
function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}
