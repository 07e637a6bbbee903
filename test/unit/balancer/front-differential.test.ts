/**
 * The balancer's request-head rules (request-head.ts, both fronts) against Node's own parser, llhttp:
 * a few thousand generated and mutated connections must be read alike (bench/front-fuzz.ts runs a
 * million), and each parser laxness of issue 11 is refused, or framed as llhttp frames it, by name.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BadRequest, REFUSED_ON_PURPOSE, parseRequestHead } from "../../../src/balancer/request-head.js";
import {
  connectionBytes,
  disagreement,
  readWithLlhttp,
  readWithRawFront,
} from "../../support/front-differential.js";

const bytes = (text: string) => Buffer.from(text, "latin1");

/** The refusal's status and detail, or the parsed head. */
function parse(head: string) {
  try {
    return parseRequestHead(head, "10.0.0.9");
  } catch (error) {
    if (error instanceof BadRequest) return { status: error.status, reason: error.message };
    throw error;
  }
}

describe("front vs llhttp", () => {
  it("reads generated and mutated connections as llhttp does, or refuses them for a named reason", () => {
    fc.assert(
      fc.property(connectionBytes, (input) => {
        const why = disagreement(input);
        assert.equal(why, undefined, `${JSON.stringify(input.toString("latin1"))}\n${why ?? ""}`);
      }),
      { numRuns: Number(process.env.FRONT_FUZZ_RUNS ?? 5000) },
    );
  });

  it("tells a disagreement when there is one (the comparison can fail)", () => {
    // The raw front as it was: Transfer-Encoding trimmed with String.prototype.trim().
    const trimmed = (input: Buffer) =>
      readWithRawFront(bytes(input.toString("latin1").replace("\x0bchunked", "chunked")));
    const smuggle = bytes("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n");
    assert.equal(disagreement(smuggle), undefined);
    assert.match(disagreement(smuggle, trimmed) ?? "", /raw accepts, llhttp refused/);
    // One that kept every connection alive ("Connection: close" matched as a substring, say).
    const alive = (input: Buffer) => {
      const reading = readWithRawFront(input);
      return { ...reading, requests: reading.requests.map((request) => ({ ...request, keepAlive: true })) };
    };
    const close = bytes("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert.match(disagreement(close, alive) ?? "", /raw keeps alive, llhttp closes/);
  });

  it("refuses each laxness of issue 11, by status and reason", () => {
    const refused: [string, number, string][] = [
      ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0bchunked", 400, "bad header value"],
      ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0c", 400, "bad header value"],
      [
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \xa0chunked",
        400,
        REFUSED_ON_PURPOSE.transferCoding,
      ],
      ["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t", 400, REFUSED_ON_PURPOSE.transferCoding],
      [
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked",
        501,
        REFUSED_ON_PURPOSE.transferCoding,
      ],
      [
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip",
        501,
        REFUSED_ON_PURPOSE.transferCoding,
      ],
      [
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        501,
        REFUSED_ON_PURPOSE.transferCoding,
      ],
      ["POST / HTTP/1.0\r\nTransfer-Encoding: chunked", 400, REFUSED_ON_PURPOSE.http10Chunked],
      ["GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b", 400, "bad header value"],
      ["GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb", 400, "bad header value"],
      ["GET /a\x01 HTTP/1.1\r\nHost: h", 400, "bad request line"],
      ["GET /a\xff HTTP/1.1\r\nHost: h", 400, "bad request line"],
      ["GET /a b HTTP/1.1\r\nHost: h", 400, "bad request line"],
      [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3",
        400,
        "more than one content-length",
      ],
      ["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\t", 400, "bad content-length"],
      ["GET / HTTP/1.1\r\nHost: h\r\nHost: h", 400, REFUSED_ON_PURPOSE.duplicateHost],
      ["GET / HTTP/1.1\r\nHost: a b", 400, REFUSED_ON_PURPOSE.badHost],
      ["GET / HTTP/1.1\r\nHost: u@h", 400, REFUSED_ON_PURPOSE.badHost],
      ["GET / HTTP/1.1", 400, REFUSED_ON_PURPOSE.noHost],
      ["GET http://u@h/ HTTP/1.1\r\nHost: h", 400, REFUSED_ON_PURPOSE.badAuthority],
      ["GET * HTTP/1.1\r\nHost: h", 400, REFUSED_ON_PURPOSE.asteriskTarget],
      [
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: content-length",
        400,
        REFUSED_ON_PURPOSE.connectionNamesFraming,
      ],
      ["CONNECT h:443 HTTP/1.1\r\nHost: h:443", 501, REFUSED_ON_PURPOSE.method],
      ["TRACE / HTTP/1.1\r\nHost: h", 501, REFUSED_ON_PURPOSE.method],
    ];
    for (const [head, status, reason] of refused) {
      assert.deepEqual(parse(head), { status, reason }, JSON.stringify(head));
      // llhttp refuses it too, or the refusal is one of the named, deliberate ones.
      const llhttp = readWithLlhttp(bytes(`${head}\r\n\r\n`));
      assert.ok(
        llhttp.end === "refused" || Object.values<string>(REFUSED_ON_PURPOSE).includes(reason),
        `llhttp accepts ${JSON.stringify(head)}: the refusal must be named`,
      );
    }
  });

  it("passes on one normalised framing: one length, one Host, origin-form", () => {
    const padded = parse("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length:  003 \r\nX-A: 1");
    assert.ok(!("status" in padded));
    assert.equal(padded.length, 3);
    assert.equal(padded.forward.lines, "Host: h\r\nX-A: 1\r\ncontent-length: 3\r\n");
    const absolute = parse("GET HTTP://h.example:8080?q=1 HTTP/1.1\r\nHost: other\r\nX-A: 1");
    assert.ok(!("status" in absolute));
    assert.equal(absolute.url, "/?q=1");
    assert.equal(absolute.forward.lines, "X-A: 1\r\nhost: h.example:8080\r\n");
  });

  it("reads Connection as a token list, and what it names is neither passed on nor acted on", () => {
    const named = parse(
      "POST /p HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Idempotency-Key , accept\r\n" +
        "Idempotency-Key: k1\r\nAccept: text/event-stream\r\nContent-Length: 0",
    );
    assert.ok(!("status" in named));
    assert.equal(named.forward.hasIdempotencyKey, false);
    assert.equal(named.forward.wantsEvents, false);
    assert.equal(named.forward.lines, "Host: h\r\nContent-Length: 0\r\n");
    const closed = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed");
    assert.ok(!("status" in closed) && closed.keepAlive, "'closed' is not 'close'");
    const listed = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: x,close");
    assert.ok(!("status" in listed) && !listed.keepAlive);
    const old = parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1");
    assert.ok(!("status" in old) && !old.expectsContinue && !old.keepAlive, "no 100 Continue to HTTP/1.0");
  });
});
