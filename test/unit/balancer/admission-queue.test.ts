import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { AdmissionQueue } from "../../../src/balancer/admission-queue.js";

describe("AdmissionQueue", () => {
  it("is first in, first out and refuses past its length", () => {
    const queue = new AdmissionQueue<number>(2, 10_000);
    assert.ok(queue.enqueue(1, () => undefined));
    assert.ok(queue.enqueue(2, () => undefined));
    assert.equal(
      queue.enqueue(3, () => undefined),
      undefined,
    );
    assert.equal(queue.shift(), 1);
    assert.equal(queue.shift(), 2);
    assert.equal(queue.shift(), undefined);
    assert.equal(queue.length, 0);
  });

  it("tells a waiter once when it timed out, and it has left the queue", async () => {
    const queue = new AdmissionQueue<string>(10, 20);
    const timedOut: string[] = [];
    queue.enqueue("a", (item) => timedOut.push(item));
    await sleep(80);
    assert.deepEqual(timedOut, ["a"]);
    assert.equal(queue.length, 0);
  });

  it("lets a waiter leave early; its timer is cleared", async () => {
    const queue = new AdmissionQueue<string>(10, 20);
    const timedOut: string[] = [];
    const ticket = queue.enqueue("a", (item) => timedOut.push(item))!;
    queue.enqueue("b", (item) => timedOut.push(item));
    assert.equal(queue.cancel(ticket), true);
    assert.equal(queue.cancel(ticket), false);
    assert.equal(queue.shift(), "b");
    await sleep(60);
    assert.deepEqual(timedOut, []);
  });
});
