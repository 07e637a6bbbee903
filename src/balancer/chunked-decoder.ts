/**
 * Decodes an HTTP/1.1 chunked body as it arrives, in pieces of any size: chunk sizes (with extensions),
 * data, and trailers (checked like header lines, bounded in size and count, then skipped). As strict as
 * llhttp: hex digits and no whitespace in a size line, extensions as `;name[=token|"quoted"]`, CRLF after
 * every line and after each chunk's data. Used by the raw client (responses) and the raw front (request
 * bodies).
 */
export class ChunkedBodyError extends Error {
  readonly code = "CHUNKED_BODY_INVALID";
  /** A limit was passed (the body is not malformed, only too big to take). */
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

const MAX_LINE_BYTES = 4096;
/** Significant hex digits of a chunk size: 2^48 bytes, far past any body the balancer passes on. */
const MAX_SIZE_DIGITS = 12;
const TCHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/** A size line: hex digits, then chunk extensions with no whitespace (llhttp's strict grammar). */
const SIZE_LINE = new RegExp(
  `^([0-9a-fA-F]+)(?:;${TCHAR}+(?:=(?:${TCHAR}*|"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t\\x20-\\x7e\\x80-\\xff])*"))?)*$`,
);
const HEX_ONLY = /^[0-9a-fA-F]{1,12}$/;
/** A trailer line: a header line (token name, colon, value of HTAB, visible ASCII and obs-text). */
const TRAILER_LINE = new RegExp(`^${TCHAR}+:[\\t\\x20-\\x7e\\x80-\\xff]*$`);

export class ChunkedDecoder {
  #state: "size" | "data" | "data-end" | "trailers" = "size";
  #remaining = 0;
  #line = "";
  readonly #maxTrailerBytes: number;
  readonly #maxTrailers: number;
  #trailerBytes = 0;
  #trailers = 0;

  /** `maxTrailerBytes`/`maxTrailers`: the trailer section's limits, like a head's (past them, tooLarge). */
  constructor(maxTrailerBytes = 16_384, maxTrailers = 100) {
    this.#maxTrailerBytes = maxTrailerBytes;
    this.#maxTrailers = maxTrailers;
  }

  /**
   * Feeds bytes; `deliver` gets the decoded data. Returns where the body ended inside `chunk` (the
   * offset of the first byte after it), or -1 when more is needed. Throws ChunkedBodyError.
   */
  feed(chunk: Buffer, deliver: (data: Buffer) => void): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#state === "data") {
        const take = Math.min(this.#remaining, chunk.length - offset);
        deliver(chunk.subarray(offset, offset + take));
        offset += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = "data-end";
        continue;
      }
      const newline = chunk.indexOf(10, offset);
      if (newline === -1) {
        this.#line += chunk.toString("latin1", offset);
        this.#checkLineLength();
        return -1;
      }
      let line = this.#line + chunk.toString("latin1", offset, newline);
      this.#line = "";
      offset = newline + 1;
      if (!line.endsWith("\r")) throw new ChunkedBodyError("bare LF in a chunked body");
      line = line.slice(0, -1);
      switch (this.#state) {
        case "data-end":
          if (line !== "") throw new ChunkedBodyError("no CRLF after a chunk");
          this.#state = "size";
          break;
        case "size": {
          const size = sizeOf(line);
          if (size === 0) this.#state = "trailers";
          else {
            this.#remaining = size;
            this.#state = "data";
          }
          break;
        }
        case "trailers":
          if (line === "") return offset;
          this.#trailerBytes += line.length + 2;
          if (this.#trailerBytes > this.#maxTrailerBytes || ++this.#trailers > this.#maxTrailers)
            throw new ChunkedBodyError("trailers too large", true);
          if (!TRAILER_LINE.test(line)) throw new ChunkedBodyError("bad trailer line");
          break;
      }
    }
    return -1;
  }

  #checkLineLength(): void {
    if (this.#state === "trailers") {
      if (this.#trailerBytes + this.#line.length > this.#maxTrailerBytes)
        throw new ChunkedBodyError("trailers too large", true);
    } else if (this.#line.length > MAX_LINE_BYTES) throw new ChunkedBodyError("chunk line too long");
  }
}

/** A size line's size; throws ChunkedBodyError. */
function sizeOf(line: string): number {
  // Nearly every size line is a few hex digits alone.
  if (HEX_ONLY.test(line)) return parseInt(line, 16);
  const match = SIZE_LINE.exec(line);
  if (!match) {
    // llhttp takes a few odd extensions (";;a", ";=b"); the balancer only `;name[=value]` ones.
    throw new ChunkedBodyError(/^[0-9a-fA-F]+;/.test(line) ? "bad chunk extension" : "bad chunk size");
  }
  const digits = match[1]!;
  let first = 0;
  while (first < digits.length - 1 && digits.charCodeAt(first) === 48) first++;
  if (digits.length - first > MAX_SIZE_DIGITS) throw new ChunkedBodyError("chunk size too large");
  return parseInt(digits.slice(first), 16);
}
