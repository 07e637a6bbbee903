import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HeadLines } from "../../../src/balancer/head-lines.js";

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
