/**
 * The rehearsal's waiting-room door (waiting-room-gate.ts) follows the answers' timing as a real client
 * does: it asks again after exactly pollAfterMs, after Retry-After on a 503, and buys with an early
 * access token only when pollAfterMs says; it gives up on a refusal or after its longest wait.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DoorAnswer } from "../../../src/rehearsal/rehearsal-client.js";
import { hasWaitingRoom, waitAfter, WaitingRoomGate } from "../../../src/rehearsal/waiting-room-gate.js";

const buyer = { index: 0, customerId: "c0" };
const ok = (status: number, body: object): DoorAnswer => ({ status, body, retryAfterSeconds: null });
const waiting = (pollAfterMs: number) => ok(200, { state: "waiting", pollAfterMs });

/** A door that answers from a script, and a clock that moves only when the gate sleeps. */
function scripted(answers: DoorAnswer[]) {
  const calls: { method: string; path: string; headers: Readonly<Record<string, string>>; atMs: number }[] =
    [];
  const sleeps: number[] = [];
  let clockMs = 0;
  const gate = new WaitingRoomGate({
    call: async (method, path, headers = {}) => {
      calls.push({ method, path, headers, atMs: clockMs });
      const answer = answers.shift();
      assert.ok(answer, `an unexpected ${method} ${path}`);
      return answer;
    },
    sleep: async (ms) => {
      sleeps.push(ms);
      clockMs += ms;
    },
    maxWaitMs: 60_000,
    now: () => clockMs,
  });
  return { gate, calls, sleeps, clock: () => clockMs };
}

describe("the rehearsal's waiting-room door", () => {
  it("joins, asks again exactly after pollAfterMs, and buys when an early token's pollAfterMs says", async () => {
    const { gate, calls, sleeps, clock } = scripted([
      ok(201, { state: "waiting", pollAfterMs: 1700, queueToken: "q1" }),
      waiting(1234),
      // The admission time is known: the token comes early, with the time until then.
      ok(200, { state: "waiting", pollAfterMs: 2716, accessToken: "a1" }),
    ]);
    const admission = await gate.admit(buyer, "evt_1");
    assert.deepEqual(admission, { headers: { "queue-token": "q1", "access-token": "a1" } });
    assert.deepEqual(sleeps, [1700, 1234, 2716], "no rounding, no fixed interval");
    assert.deepEqual(
      calls.map((c) => `${c.method} ${c.path} ${c.headers["queue-token"] ?? "-"} @${c.atMs}`),
      [
        "POST /v1/events/evt_1/queue - @0",
        "GET /v1/events/evt_1/queue q1 @1700",
        "GET /v1/events/evt_1/queue q1 @2934",
      ],
    );
    assert.equal(clock(), 5650, "the buyer is through the door at its admission time, not at the poll");
  });

  it("buys at once with a token of an admitted place", async () => {
    const { gate, sleeps } = scripted([
      ok(201, { state: "waiting", pollAfterMs: 300, queueToken: "q1" }),
      ok(200, { state: "admitted", pollAfterMs: 30_000, accessToken: "a1" }),
    ]);
    assert.ok(await gate.admit(buyer, "evt_1"));
    assert.deepEqual(sleeps, [300]);
  });

  it("waits a 503's Retry-After before joining or asking again", async () => {
    const busy: DoorAnswer = { status: 503, body: { code: "overloaded" }, retryAfterSeconds: 2 };
    const { gate, sleeps } = scripted([
      busy,
      { status: null, body: null, retryAfterSeconds: null },
      ok(201, { state: "waiting", pollAfterMs: 500, queueToken: "q1" }),
      busy,
      ok(200, { state: "admitted", pollAfterMs: 30_000, accessToken: "a1" }),
    ]);
    assert.ok(await gate.admit(buyer, "evt_1"));
    assert.deepEqual(sleeps, [2000, 1000, 500, 2000]);
  });

  it("is turned away by a refusal, a place left, or a wait longer than its longest", async () => {
    assert.equal(await scripted([ok(404, { code: "waiting_room_not_found" })]).gate.admit(buyer, "e"), null);
    const left = scripted([
      ok(201, { state: "waiting", pollAfterMs: 100, queueToken: "q1" }),
      ok(200, { state: "left", pollAfterMs: 30_000 }),
    ]);
    assert.equal(await left.gate.admit(buyer, "e"), null);
    const forever = scripted([
      ok(201, { state: "waiting", pollAfterMs: 30_000, queueToken: "q1" }),
      waiting(30_000),
      waiting(30_000),
    ]);
    assert.equal(await forever.gate.admit(buyer, "e"), null);
    assert.deepEqual(forever.sleeps, [30_000, 30_000], "gives up at 60 s without sleeping past it");
  });

  it("reads the wait from the answer, a second when it says nothing", () => {
    assert.equal(waitAfter(waiting(0)), 0);
    assert.equal(waitAfter(ok(200, { state: "waiting" })), 1000);
    assert.equal(waitAfter({ status: 503, body: null, retryAfterSeconds: 3 }), 3000);
    assert.equal(waitAfter({ status: null, body: null, retryAfterSeconds: null }), 1000);
  });

  it("takes the room's door only for an event with a room", async () => {
    const door = (answer: DoorAnswer) => () => Promise.resolve(answer);
    assert.equal(await hasWaitingRoom(door(ok(404, { code: "waiting_room_not_found" })), "e"), false);
    assert.equal(await hasWaitingRoom(door(ok(403, { code: "queue_token_invalid" })), "e"), true);
  });
});
