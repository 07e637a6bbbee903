/**
 * The retry policy, and the client that follows it against a real HTTP server: 503s and cut-offs are
 * retried with the SAME Idempotency-Key, never sooner than Retry-After, at most maxAttempts times, and
 * every attempt is recorded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ClientRecord } from "../../../src/rehearsal/client-log.js";
import { seededRandom } from "../../../src/rehearsal/random.js";
import { RehearsalClient } from "../../../src/rehearsal/rehearsal-client.js";
import { decideRetry, isRetryable, retryAfterMs } from "../../../src/rehearsal/retry-policy.js";

const policy = { maxAttempts: 4, maxWaitMs: 10_000, baseBackoffMs: 100 };
const answer = (status: number, retryAfter: string | null = null, code: string | null = null) =>
  ({ kind: "answer", status, retryAfter, code }) as const;

describe("retry policy", () => {
  it("retries 503, 502, 504, 429, key-in-use and cut-offs; never a definitive answer", () => {
    for (const status of [503, 502, 504, 429]) assert.ok(isRetryable(answer(status)), String(status));
    assert.ok(isRetryable(answer(409, "1", "idempotency_key_in_use")));
    assert.ok(isRetryable({ kind: "cut-off", error: "ECONNRESET" }));
    for (const status of [200, 201, 204, 400, 404, 410, 422, 500]) {
      assert.ok(!isRetryable(answer(status)), String(status));
    }
    assert.ok(!isRetryable(answer(409, null, "sold_out")));
  });

  it("waits at least Retry-After (seconds or an HTTP date), and a little more", () => {
    const random = seededRandom(3);
    for (let i = 0; i < 200; i++) {
      const decision = decideRetry(policy, 1, answer(503, "2"), random);
      assert.ok(
        decision.retry && decision.waitMs >= 2000 && decision.waitMs <= 2200,
        JSON.stringify(decision),
      );
    }
    const now = Date.parse("2026-11-30T10:00:00Z");
    assert.equal(retryAfterMs("Mon, 30 Nov 2026 10:00:03 GMT", now), 3000);
    assert.equal(retryAfterMs("soon", now), null);
    const dated = decideRetry(policy, 1, answer(503, "Mon, 30 Nov 2026 10:00:03 GMT"), random, now);
    assert.ok(dated.retry && dated.waitMs >= 3000);
  });

  it("gives up after maxAttempts, and when Retry-After is beyond the longest wait", () => {
    const random = seededRandom(3);
    assert.deepEqual(decideRetry(policy, 4, answer(503, "1"), random), {
      retry: false,
      reason: "no answer after 4 attempts",
    });
    const far = decideRetry(policy, 1, answer(503, "60"), random);
    assert.equal(far.retry, false);
  });

  it("without Retry-After, a jittered backoff whose ceiling doubles", () => {
    const random = seededRandom(9);
    const ceiling = (attempt: number) =>
      Math.max(
        ...Array.from({ length: 300 }, () => {
          const d = decideRetry(policy, attempt, { kind: "cut-off", error: "x" }, random);
          return d.retry ? d.waitMs : -1;
        }),
      );
    assert.ok(ceiling(1) <= 100 && ceiling(1) > 50);
    assert.ok(ceiling(3) <= 400 && ceiling(3) > 200);
  });
});

describe("rehearsal client against a real server", () => {
  const seen: { key: string | undefined; body: string }[] = [];
  let plan: ((request: IncomingMessage, response: ServerResponse) => void)[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      seen.push({ key: request.headers["idempotency-key"] as string | undefined, body });
      const next = plan.shift();
      if (next) next(request, response);
      else response.writeHead(500).end();
    });
  });
  after(() => server.close());
  const unavailable = (retryAfter: string) => (_: IncomingMessage, response: ServerResponse) => {
    response.writeHead(503, { "content-type": "application/problem+json", "retry-after": retryAfter });
    response.end(JSON.stringify({ status: 503, code: "unavailable" }));
  };
  const cutOff = (request: IncomingMessage) => request.socket.destroy();
  const created = (_: IncomingMessage, response: ServerResponse) => {
    response.writeHead(201, { "content-type": "application/json", "x-served-by": "i-7" });
    response.end(JSON.stringify({ id: "ord_1", quantity: 2 }));
  };

  async function client(maxAttempts: number) {
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const records: ClientRecord[] = [];
    const waits: number[] = [];
    const rehearsal = new RehearsalClient({
      url: `http://127.0.0.1:${port}`,
      connections: 4,
      requestTimeoutMs: 5000,
      retry: { maxAttempts, maxWaitMs: 10_000, baseBackoffMs: 50 },
      random: seededRandom(1),
      record: (record) => records.push(record),
      // The waits are what the test checks; it does not spend them.
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    return { rehearsal, records, waits };
  }

  it("retries a 503 and a cut-off with the same key, honouring Retry-After, and records every attempt", async () => {
    seen.length = 0;
    plan = [unavailable("2"), cutOff, unavailable("1"), created];
    const { rehearsal, records, waits } = await client(8);
    const final = await rehearsal.send({
      kind: "purchase",
      eventId: "evt_1",
      method: "POST",
      path: "/v1/events/evt_1/orders",
      body: { customerId: "c", quantity: 2 },
      idempotencyKey: "k-1",
    });
    await rehearsal.close();
    assert.deepEqual(final, { status: 201, body: { id: "ord_1", quantity: 2 }, attempts: 4 });
    assert.deepEqual(
      seen.map((s) => s.key),
      ["k-1", "k-1", "k-1", "k-1"],
    );
    assert.ok(seen.every((s) => s.body === JSON.stringify({ customerId: "c", quantity: 2 })));
    assert.deepEqual(
      records.map((r) => [r.status, r.idempotencyKey, r.instance]),
      [
        [503, "k-1", null],
        [null, "k-1", null],
        [503, "k-1", null],
        [201, "k-1", "i-7"],
      ],
    );
    assert.equal(waits.length, 3);
    assert.ok(waits[0]! >= 2000, `after Retry-After: 2, waited ${waits[0]}`);
    assert.ok(waits[1]! < 2000, "a cut-off backs off briefly");
    assert.ok(waits[2]! >= 1000, `after Retry-After: 1, waited ${waits[2]}`);
    assert.ok(records.every((r) => r.endedAtMs >= r.startedAtMs));
  });

  it("stops after maxAttempts and leaves the key in doubt (status null) for the verifier", async () => {
    seen.length = 0;
    plan = [cutOff, cutOff, cutOff, created];
    const { rehearsal, records } = await client(3);
    const final = await rehearsal.send({
      kind: "hold",
      eventId: "evt_1",
      method: "POST",
      path: "/v1/events/evt_1/holds",
      body: { customerId: "c", quantity: 1 },
      idempotencyKey: "k-2",
    });
    await rehearsal.close();
    assert.equal(final.status, null);
    assert.equal(final.attempts, 3);
    assert.equal(seen.length, 3);
    assert.deepEqual(
      records.map((r) => r.status),
      [null, null, null],
    );
    plan = [];
  });
});
