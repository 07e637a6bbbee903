/**
 * Walks the header lines of an HTTP/1.1 head (request or response) without splitting it: for each line,
 * its name and its value (without the optional whitespace around it) are the only two strings made.
 * The raw front (request heads) and the raw client (response heads) both read heads with it.
 */
export class HeadLines {
  /** The current line's header name, as sent. */
  name = "";
  /** The current line's value, without leading or trailing spaces and tabs. */
  value = "";
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
    this.#at = end + 2;
    return true;
  }
}

/** SP or HTAB, the only whitespace HTTP allows around a header value. */
function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}
