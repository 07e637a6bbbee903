import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  HOP_BY_HOP,
  HeadLines,
  HeaderKind,
  NOT_FORWARDED,
  isHopByHop,
  isNotForwarded,
} from "../../../src/balancer/head-lines.js";

function all(head: string): { pairs: string[][]; malformed: boolean } {
  const firstLineEnd = head.includes("\r\n") ? head.indexOf("\r\n") : head.length;
  const lines = new HeadLines(head, firstLineEnd + 2);
  const pairs: string[][] = [];
  while (lines.next()) pairs.push([lines.name, lines.value]);
  return { pairs, malformed: lines.malformed };
}

describe("HeadLines", () => {
  it("gives each header's name as sent and its value without surrounding spaces and tabs", () => {
    const { pairs, malformed } = all("GET / HTTP/1.1\r\nHost: x\r\nX-A:\t a b \t\r\nEmpty:\r\nlast:1");
    assert.deepEqual(pairs, [
      ["Host", "x"],
      ["X-A", "a b"],
      ["Empty", ""],
      ["last", "1"],
    ]);
    assert.equal(malformed, false);
  });

  it("stops at a line without a name before a colon, and says the head is malformed", () => {
    for (const head of ["HTTP/1.1 200 OK\r\nA: 1\r\nno colon here\r\nB: 2", "HTTP/1.1 200 OK\r\n: no name"]) {
      const { malformed } = all(head);
      assert.equal(malformed, true, head);
    }
    assert.deepEqual(all("HTTP/1.1 200 OK\r\nA: 1\r\nno colon\r\nB: 2").pairs, [["A", "1"]]);
  });

  it("reads a head with no header lines as empty", () => {
    assert.deepEqual(all("HTTP/1.1 204 No Content"), { pairs: [], malformed: false });
  });
});

describe("HeadLines.kind", () => {
  const kindOf = (name: string): HeaderKind => {
    const lines = new HeadLines(`GET / HTTP/1.1\r\n${name}: v`, 16);
    assert.equal(lines.next(), true);
    return lines.kind();
  };
  const KNOWN: [string, HeaderKind][] = [
    ["connection", HeaderKind.CONNECTION],
    ["transfer-encoding", HeaderKind.TRANSFER_ENCODING],
    ["content-length", HeaderKind.CONTENT_LENGTH],
    ["content-type", HeaderKind.CONTENT_TYPE],
    ["host", HeaderKind.HOST],
    ["expect", HeaderKind.EXPECT],
    ["accept", HeaderKind.ACCEPT],
    ["idempotency-key", HeaderKind.IDEMPOTENCY_KEY],
    ["x-forwarded-for", HeaderKind.X_FORWARDED_FOR],
    ["x-forwarded-proto", HeaderKind.X_FORWARDED_PROTO],
    ["proxy-connection", HeaderKind.PROXY_CONNECTION],
    ...[...HOP_BY_HOP]
      .filter((name) => name !== "connection" && name !== "transfer-encoding" && name !== "proxy-connection")
      .map((name): [string, HeaderKind] => [name, HeaderKind.HOP]),
  ];

  it("tells every header the balancer acts on, in any case, and agrees with HOP_BY_HOP and NOT_FORWARDED", () => {
    const caseOf = (name: string) =>
      fc
        .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
        .map((upper) => [...name].map((char, index) => (upper[index] ? char.toUpperCase() : char)).join(""));
    for (const [name, kind] of KNOWN) {
      fc.assert(
        fc.property(caseOf(name), (sent) => {
          const got = kindOf(sent);
          assert.equal(got, kind, sent);
          assert.equal(isHopByHop(got), HOP_BY_HOP.has(name), sent);
          assert.equal(isNotForwarded(got), NOT_FORWARDED.has(name), sent);
        }),
        { numRuns: 50 },
      );
    }
  });

  it("calls every other token OTHER, however close to a known name", () => {
    const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/);
    const known = new Set(KNOWN.map(([name]) => name));
    fc.assert(
      fc.property(token, (name) => {
        fc.pre(!known.has(name.toLowerCase()));
        assert.equal(kindOf(name), HeaderKind.OTHER, name);
      }),
      { numRuns: 2000 },
    );
    // One character off, or a case change that is not a letter's (\r is '-' with the case bit cleared).
    for (const near of [
      "contend-length",
      "content_length",
      "hosts",
      "te2",
      "x-forwarded-fox",
      "content\rlength",
    ])
      assert.equal(kindOf(near), HeaderKind.OTHER, JSON.stringify(near));
  });

  it("makes the name and value strings only when asked, from the positions it keeps", () => {
    const head = "HTTP/1.1 200 OK\r\nContent-Length:  12 \r\nX-A: b";
    const lines = new HeadLines(head, 17);
    assert.equal(lines.next(), true);
    assert.equal(head.slice(lines.lineStart, lines.nameEnd), "Content-Length");
    assert.equal(head.slice(lines.valueStart, lines.valueEnd), "12");
    assert.equal(lines.kind(), HeaderKind.CONTENT_LENGTH);
    assert.equal(lines.next(), true);
    assert.deepEqual([lines.name, lines.value, lines.kind()], ["X-A", "b", HeaderKind.OTHER]);
  });
});
