import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { renderHaproxyConfig, renderNginxConfig } from "../../../src/balancer/deploy-config.js";

const targets = {
  listen: "127.0.0.1:19290",
  backends: ["127.0.0.1:19291", "127.0.0.1:19292", "127.0.0.1:19293"],
};

describe("deploy config rendering", () => {
  it("puts the listen address and one server line per instance into haproxy.cfg", () => {
    const text = renderHaproxyConfig(readFileSync("deploy/haproxy.cfg", "utf8"), targets);
    assert.match(text, /^\s*bind 127\.0\.0\.1:19290$/m);
    assert.deepEqual(
      text.match(/^\s*server .*$/gm)?.map((line) => line.trim()),
      ["server b1 127.0.0.1:19291", "server b2 127.0.0.1:19292", "server b3 127.0.0.1:19293"],
    );
    assert.match(text, /balance leastconn/);
  });

  it("puts the listen address and the upstream servers into nginx.conf, keeping their options", () => {
    const text = renderNginxConfig(readFileSync("deploy/nginx.conf", "utf8"), targets);
    assert.match(text, /^\s*listen 127\.0\.0\.1:19290;$/m);
    const servers = text.match(/^\s*server \S+:\d+.*;$/gm) ?? [];
    assert.equal(servers.length, 3);
    assert.match(servers[2]!, /server 127\.0\.0\.1:19293 max_fails=3/);
    assert.match(text, /least_conn;/);
  });
});
