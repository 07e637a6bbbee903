/**
 * What the balancer makes of a client's X-Request-Id (request-head.ts with http/request-id.ts): a safe
 * one is kept and passed on as sent; an unsafe one, a second one, or one the client named in Connection is
 * not passed on, and the balancer makes its own.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseRequestHead } from "../../../src/balancer/request-head.js";
import { RequestIdGenerator, isSafeRequestId } from "../../../src/http/request-id.js";

const head = (...lines: string[]) => ["GET / HTTP/1.1", "Host: h", ...lines].join("\r\n");

describe("X-Request-Id in a request head", () => {
  it("keeps a safe id, in any case of the name, and passes its line on", () => {
    for (const name of ["X-Request-Id", "x-request-id", "X-REQUEST-ID"]) {
      const parsed = parseRequestHead(head(`${name}: 3f2b-11ee:a/b+c=~_.`), "127.0.0.1");
      assert.equal(parsed.forward.requestId, "3f2b-11ee:a/b+c=~_.");
      assert.match(parsed.forward.lines, new RegExp(`${name}: 3f2b`));
    }
  });

  it("drops an unsafe id: too long, a space, a tab, a comma, a quote, a semicolon, a backslash, obs-text", () => {
    for (const id of ["a".repeat(129), "a b", "a\tb", "a,b", 'a"b', "a;b", "a\\b", "caf\xe9", ""]) {
      const parsed = parseRequestHead(head(`X-Request-Id: ${id}`, "X-Other: 1"), "127.0.0.1");
      assert.equal(parsed.forward.requestId, undefined, JSON.stringify(id));
      assert.doesNotMatch(parsed.forward.lines, /x-request-id/i, JSON.stringify(id));
      assert.match(parsed.forward.lines, /X-Other: 1/);
    }
    assert.equal(
      parseRequestHead(head(`X-Request-Id: ${"a".repeat(128)}`), "1.2.3.4").forward.requestId?.length,
      128,
    );
  });

  it("passes on only the first safe id of several", () => {
    const parsed = parseRequestHead(
      head("X-Request-Id: bad id", "X-Request-Id: first", "X-Request-Id: second"),
      "127.0.0.1",
    );
    assert.equal(parsed.forward.requestId, "first");
    assert.equal(parsed.forward.lines.match(/x-request-id/gi)?.length, 1);
  });

  it("forgets an id the client named in Connection (it is hop-by-hop then)", () => {
    const parsed = parseRequestHead(head("Connection: x-request-id", "X-Request-Id: abc"), "127.0.0.1");
    assert.equal(parsed.forward.requestId, undefined);
    assert.doesNotMatch(parsed.forward.lines, /x-request-id/i);
  });

  it("makes ids that are safe and distinct", () => {
    const ids = new RequestIdGenerator();
    const other = new RequestIdGenerator();
    const made = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      for (const id of [ids.next(), other.next()]) {
        assert.ok(isSafeRequestId(id), id);
        made.add(id);
      }
    }
    assert.equal(made.size, 2000);
  });
});
