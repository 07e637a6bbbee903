/**
 * Decodes an HTTP/1.1 chunked body as it arrives, in pieces of any size: chunk sizes (with extensions),
 * data, and trailers (skipped). Used by the raw client (responses) and the raw front (request bodies).
 */
export class ChunkedBodyError extends Error {
  readonly code = "CHUNKED_BODY_INVALID";
}

const MAX_LINE_BYTES = 4096;
const SIZE_LINE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/;

export class ChunkedDecoder {
  #state: "size" | "data" | "data-end" | "trailers" = "size";
  #remaining = 0;
  #line = "";

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
        if (this.#line.length > MAX_LINE_BYTES) throw new ChunkedBodyError("chunk line too long");
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
          const match = SIZE_LINE.exec(line);
          if (!match) throw new ChunkedBodyError("bad chunk size");
          const size = parseInt(match[1]!, 16);
          if (size === 0) this.#state = "trailers";
          else {
            this.#remaining = size;
            this.#state = "data";
          }
          break;
        }
        case "trailers":
          if (line === "") return offset;
          break;
      }
    }
    return -1;
  }
}
