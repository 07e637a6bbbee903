import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalQueue } from "../../../src/lock/local-queue.js";

describe("LocalQueue", () => {
  it("lets one in at a time per key, in arrival order, and keys apart", async () => {
    const queue = new LocalQueue();
    const order: number[] = [];
    let inside = 0;
    await Promise.all(
      [0, 1, 2, 3, 4].map(async (n) => {
        const leave = await queue.enter("a", 1000);
        inside++;
        assert.equal(inside, 1);
        order.push(n);
        await sleep(5);
        inside--;
        leave();
      }),
    );
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    const leaveA = await queue.enter("a", 10);
    const leaveB = await queue.enter("b", 10);
    leaveA();
    leaveB();
  });

  it("gives up with LOCK_BUSY after the wait and does not block those behind", async () => {
    const queue = new LocalQueue();
    const leave = await queue.enter("k", 1000);
    const late = queue.enter("k", 20);
    const patient = queue.enter("k", 1000);
    await assert.rejects(late, { code: "LOCK_BUSY" });
    leave();
    const leavePatient = await patient;
    leavePatient();
    leavePatient(); // a second call lets nobody else in
    (await queue.enter("k", 10))();
  });
});
