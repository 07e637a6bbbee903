/**
 * The waiting room end to end, on real `boxoffice server` processes sharing one store (SQLite files on
 * this host; PostgreSQL, with the Redis lock under the sell path):
 *
 * - the surge: 10,000 buyers (5,000 join before the opening, 5,000 after) behind a room admitting 200 per
 *   second, with a rolling restart of every instance in the middle. Measured from the database's own
 *   admission times (not from this test's timing, so a loaded machine cannot fail it): every 5-second
 *   window lets in 200/s ± 5%, no two buyers less than 1/rate apart; the pre-queue is let in first, in an
 *   order that passes the uniform-shuffle test at 1e-6 against its arrival order; later arrivals are let
 *   in in arrival order; everyone who joined is let in exactly once (nobody's place lost), one place per
 *   identity.
 * - the gate: no order or hold succeeds without a valid access token; forged, expired, other-event,
 *   other-buyer and replayed tokens are refused with their codes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deriveKey } from "../../src/config/signing-secret.js";
import type { Event } from "../../src/domain/event.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { AdmissionRecord } from "../../src/store/waiting-room-store.js";
import { PassSigner } from "../../src/waiting-room/pass-signer.js";
import { HttpClient, type HttpAnswer } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, redisSkip, TEST_POSTGRES_URL, TEST_REDIS_URL } from "../support/services.js";
import { uniformShuffleVerdict } from "../support/uniform-shuffle.js";

const INSTANCES = 3;
const PRE_QUEUE = 5000;
const LATER = 5000;
const RATE = 200;
const WINDOW_MS = 5000;
/** Later arrivals join in rounds of this many at once. */
const ROUND = 250;
const SIGNING_SECRET = "waiting-room-e2e-signing-secret-0123456789";
const signer = new PassSigner(deriveKey(SIGNING_SECRET, "waiting-room"));

interface QueueAnswer {
  state: string;
  position: number | null;
  peopleAhead: number | null;
  estimatedWaitSeconds: number | null;
  queueToken?: string;
  accessToken?: string;
  code?: string;
}

interface Backend {
  name: string;
  skip: string | undefined;
  /** The extra arguments of every server, and a way to read the store directly, and to clean up. */
  setUp(): Promise<{
    args: string[];
    dataDir: string;
    openStore(): Promise<Store>;
    cleanup(): Promise<void>;
  }>;
}

const BACKENDS: Backend[] = [
  {
    name: "SQLite, a file per event",
    skip: undefined,
    async setUp() {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-room-"));
      return {
        args: ["--layout", "per-event"],
        dataDir,
        async openStore() {
          const store = new SqliteStore({
            kind: "sqlite",
            dir: dataDir,
            layout: "per-event",
            durability: "full",
            maxOpenEvents: 8,
          });
          await store.init();
          return store;
        },
        async cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "PostgreSQL, with the Redis lock",
    skip: (await postgresSkip()) ?? (await redisSkip()),
    async setUp() {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-room-pg-"));
      const schema = freshSchemaName("room");
      return {
        args: [
          "--store",
          `${TEST_POSTGRES_URL}?schema=${schema}`,
          "--pg-pool-size",
          "6",
          "--lock",
          TEST_REDIS_URL,
        ],
        dataDir,
        async openStore() {
          const store = new PostgresStore({
            url: TEST_POSTGRES_URL,
            schema,
            poolSize: 2,
            statementTimeoutMs: 10_000,
          });
          await store.init();
          return store;
        },
        async cleanup() {
          rmSync(dataDir, { recursive: true, force: true });
          await dropSchema(TEST_POSTGRES_URL, schema);
        },
      };
    },
  },
];

/** Runs `work(i)` for i in 0…count−1, at most `concurrency` at once. */
async function inParallel(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of BACKENDS) {
  describe(`waiting room on ${backend.name}`, { skip: backend.skip, timeout: 600_000 }, () => {
    const http = new HttpClient(32);
    let setup: Awaited<ReturnType<Backend["setUp"]>>;
    const servers: ServerProcess[] = [];
    let generation = 0;

    const start = (i: number) =>
      ServerProcess.start({
        dataDir: setup.dataDir,
        instanceId: `room-${i}-${generation++}`,
        args: setup.args,
        env: { BOXOFFICE_SIGNING_SECRET: SIGNING_SECRET },
      });
    const url = (i: number) => servers[i % servers.length]!.url;
    /** A call to instance i, or to the next one if that one is restarting (connection refused or reset). */
    const call = async <T>(i: number, path: string, options: Parameters<HttpClient["call"]>[2] = {}) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await http.call<T>(url(i + attempt), path, options);
        } catch (error) {
          if (attempt >= 20) throw error;
          await sleep(100);
        }
      }
    };
    const createEvent = async (name: string, capacity: number): Promise<Event> => {
      const created = await call<Event>(0, "/v1/events", {
        admin: true,
        body: { name, capacity, maxPerOrder: 4, maxPerCustomer: 4 },
      });
      assert.equal(created.status, 201, created.text);
      return created.body;
    };
    const putRoom = (eventId: string, body: Record<string, unknown>) =>
      call<{ state: string; admitted: number; waiting: number; joined: number }>(
        0,
        `/v1/events/${eventId}/waiting-room`,
        { method: "PUT", admin: true, body },
      );

    before(async () => {
      setup = await backend.setUp();
      for (let i = 0; i < INSTANCES; i++) servers.push(await start(i));
    });
    after(async () => {
      await stopAll();
      await http.close();
      await setup?.cleanup();
    });

    it("lets 10,000 buyers in at 200/s, the pre-queue shuffled, later arrivals in order, through a rolling restart", async () => {
      const event = await createEvent("On-sale night", 40_000);
      const farAway = new Date(Date.now() + 3600_000).toISOString();
      const created = await putRoom(event.id, {
        admissionRatePerSecond: RATE,
        sessionSeconds: 600,
        opensAt: farAway,
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.state, "pre-queue");

      // The pre-queue: 5,000 buyers join; their arrival order is the order their joins were answered.
      const queueTokens: string[] = [];
      const identityOf = (token: string) => signer.readQueue(token)!.identity;
      const arrivalOfPreQueue = new Map<string, number>();
      await inParallel(PRE_QUEUE, 48, async (i) => {
        const joined = await call<QueueAnswer>(i, `/v1/events/${event.id}/queue`, { body: {} });
        assert.equal(joined.status, 201, joined.text);
        assert.equal(joined.body.state, "pre-queue");
        assert.equal(joined.body.position, null, "nobody has a position before the draw");
        arrivalOfPreQueue.set(identityOf(joined.body.queueToken!), arrivalOfPreQueue.size);
        queueTokens.push(joined.body.queueToken!);
      });
      // Joining again, on any instance, answers the same place: one place per identity.
      for (const [i, token] of queueTokens.slice(0, 100).entries()) {
        const again = await call<QueueAnswer>(i + 1, `/v1/events/${event.id}/queue`, {
          body: {},
          headers: { "queue-token": token },
        });
        assert.equal(again.status, 200, again.text);
        assert.equal(identityOf(again.body.queueToken!), identityOf(token));
      }

      // The opening, two seconds from now (it may move while the room has not opened).
      const opensAtMs = Date.now() + 2000;
      const moved = await putRoom(event.id, {
        admissionRatePerSecond: RATE,
        sessionSeconds: 600,
        opensAt: new Date(opensAtMs).toISOString(),
      });
      assert.equal(moved.status, 200, moved.text);
      await sleep(Math.max(0, opensAtMs - Date.now()) + 300);

      // Later arrivals: in rounds of 250; every buyer of a round arrived before every buyer of the next.
      const roundOfLater = new Map<string, number>();
      const laterTokens: string[] = [];
      for (let round = 0; round < LATER / ROUND; round++) {
        await Promise.all(
          Array.from({ length: ROUND }, async (_, k) => {
            const joined = await call<QueueAnswer>(round + k, `/v1/events/${event.id}/queue`, { body: {} });
            assert.equal(joined.status, 201, joined.text);
            roundOfLater.set(identityOf(joined.body.queueToken!), round);
            laterTokens.push(joined.body.queueToken!);
          }),
        );
      }
      const opened = await putRoom(event.id, { admissionRatePerSecond: RATE, opensAt: farAway });
      assert.equal(opened.status, 409, "the opening cannot move once the room is open");

      // A few later buyers poll through the rest (and the restarts): positions only go down.
      const watched = laterTokens.filter((_, i) => i % 250 === 0);
      const positions = new Map<string, number[]>();
      let watching = true;
      const watchers = watched.map(async (token, w) => {
        const seen: number[] = [];
        positions.set(token, seen);
        while (watching) {
          const answer = await call<QueueAnswer>(w, `/v1/events/${event.id}/queue`, {
            headers: { "queue-token": token },
          });
          assert.equal(answer.status, 200, answer.text);
          if (answer.body.state === "admitted") {
            assert.ok(answer.body.accessToken, "an admitted buyer gets an access token");
            return;
          }
          assert.equal(answer.body.state, "waiting");
          if (answer.body.position !== null) seen.push(answer.body.position);
          await sleep(1000);
        }
      });

      // The rolling restart: every instance in turn, while admission goes on.
      for (let i = 0; i < INSTANCES; i++) {
        await servers[i]!.stop();
        servers[i] = await start(i);
      }

      // Wait until everyone is let in (the database says so).
      const total = PRE_QUEUE + LATER;
      for (;;) {
        const room = await call<{ admitted: number; waiting: number; joined: number }>(
          0,
          `/v1/events/${event.id}/waiting-room`,
          { admin: true },
        );
        assert.equal(room.status, 200, room.text);
        assert.equal(room.body.joined, total, "one place per identity, none lost");
        if (room.body.admitted === total) break;
        await sleep(1000);
      }
      const lastAdmissionMs = Date.now() + 3000;
      await sleep(Math.max(0, lastAdmissionMs - Date.now()));
      watching = false;
      await Promise.all(watchers);
      for (const [token, seen] of positions) {
        for (let k = 1; k < seen.length; k++)
          assert.ok(seen[k]! <= seen[k - 1]!, `${token}: ${seen.join(",")}`);
      }

      // The database's record of the admissions.
      const store = await setup.openStore();
      let admissions: AdmissionRecord[];
      try {
        admissions = await store.waitingRoom.admissions(event.id);
      } finally {
        await store.close();
      }
      assert.equal(admissions.length, total);
      assert.equal(new Set(admissions.map((a) => a.identity)).size, total, "each identity let in once");
      assert.deepEqual(
        admissions.map((a) => a.place),
        Array.from({ length: total }, (_, i) => i + 1),
      );

      // Never faster than the rate: consecutive admissions at least 1/rate apart, in place order.
      const intervalMs = 1000 / RATE;
      for (let k = 1; k < total; k++) {
        const gapMs = admissions[k]!.admitAtMs - admissions[k - 1]!.admitAtMs;
        assert.ok(gapMs >= Math.floor(intervalMs), `admissions ${k - 1} and ${k} are ${gapMs} ms apart`);
      }
      // Every full 5-second window from the first admission: 200/s ± 5%.
      const firstMs = admissions[0]!.admitAtMs;
      const windows = Math.floor((admissions[total - 1]!.admitAtMs - firstMs) / WINDOW_MS);
      assert.ok(windows >= 9, `${windows} full windows`);
      const counts = new Array<number>(windows).fill(0);
      for (const a of admissions) {
        const w = Math.floor((a.admitAtMs - firstMs) / WINDOW_MS);
        if (w < windows) counts[w]! += 1;
      }
      const expected = (RATE * WINDOW_MS) / 1000;
      for (const [w, count] of counts.entries()) {
        assert.ok(
          Math.abs(count - expected) <= expected * 0.05,
          `window ${w}: ${count} (${counts.join(", ")})`,
        );
      }
      assert.ok(firstMs >= opensAtMs, "nobody let in before the opening");

      // The pre-queue first, in a uniformly random order of its arrival.
      const preQueue = admissions.slice(0, PRE_QUEUE);
      assert.ok(preQueue.every((a) => a.preQueue && arrivalOfPreQueue.has(a.identity)));
      const rankOfArrival = new Array<number>(PRE_QUEUE);
      preQueue.forEach((a, rank) => (rankOfArrival[arrivalOfPreQueue.get(a.identity)!] = rank));
      const verdict = uniformShuffleVerdict(rankOfArrival);
      assert.ok(
        verdict.uniform,
        `the pre-queue's order is not a uniform shuffle: ${JSON.stringify(verdict)}`,
      );

      // Later arrivals after, in arrival order: no buyer of a round before one of an earlier round.
      const later = admissions.slice(PRE_QUEUE);
      let lastRound = 0;
      for (const a of later) {
        assert.equal(a.preQueue, false);
        const round = roundOfLater.get(a.identity)!;
        assert.ok(round >= lastRound, `${a.identity} of round ${round} let in after round ${lastRound}`);
        lastRound = round;
      }
    });

    it("refuses orders and holds without a valid access token: missing, forged, expired, other event, other buyer, replayed", async () => {
      const event = await createEvent("Gated", 1000);
      const other = await createEvent("Gated too", 1000);
      for (const e of [event, other]) {
        const room = await putRoom(e.id, { admissionRatePerSecond: 1000, sessionSeconds: 600 });
        assert.equal(room.status, 201, room.text);
      }
      /** Joins and waits for admission; the queue token and access token. */
      const admitted = async (eventId: string, i: number) => {
        const joined = await call<QueueAnswer>(i, `/v1/events/${eventId}/queue`, { body: {} });
        assert.equal(joined.status, 201, joined.text);
        const queueToken = joined.body.queueToken!;
        for (;;) {
          const answer = await call<QueueAnswer>(i + 1, `/v1/events/${eventId}/queue`, {
            headers: { "queue-token": queueToken },
          });
          if (answer.body.accessToken) return { queueToken, accessToken: answer.body.accessToken };
          await sleep(100);
        }
      };
      const alice = await admitted(event.id, 0);
      const bob = await admitted(event.id, 1);
      const carol = await admitted(other.id, 2);
      const sell = (eventId: string, kind: "orders" | "holds", headers: Record<string, string>, i = 0) =>
        call<{ code?: string }>(i, `/v1/events/${eventId}/${kind}`, {
          body: { customerId: `c-${i}`, quantity: 1 },
          headers,
        });
      const expectRefused = async (headers: Record<string, string>, code: string, eventId = event.id) => {
        for (const kind of ["orders", "holds"] as const) {
          for (let i = 0; i < INSTANCES; i++) {
            const answer: HttpAnswer<{ code?: string }> = await sell(eventId, kind, headers, i);
            assert.equal(answer.status, 403, `${kind} with ${JSON.stringify(headers)}: ${answer.text}`);
            assert.equal(answer.body.code, code);
          }
        }
      };
      const pass = (p: { queueToken: string; accessToken: string }) => ({
        "queue-token": p.queueToken,
        "access-token": p.accessToken,
      });

      // Missing.
      await expectRefused({}, "access_token_required");
      await expectRefused({ "queue-token": alice.queueToken }, "access_token_required");
      // Forged: another secret, an altered payload, garbage, a queue token passed off as an access token.
      const forger = new PassSigner(deriveKey("not-the-cluster-secret-0123456789-abcdef", "waiting-room"));
      const real = signer.readAccess(alice.accessToken)!;
      await expectRefused(
        { ...pass(alice), "access-token": forger.signAccess(real) },
        "access_token_invalid",
      );
      const [prefix, , mac] = alice.accessToken.split(".");
      const stretched = Buffer.from(
        JSON.stringify({
          e: real.eventId,
          s: real.identity,
          g: real.generation,
          p: real.place,
          n: real.admitAtMs,
          x: 9e15,
        }),
      ).toString("base64url");
      await expectRefused(
        { ...pass(alice), "access-token": `${prefix}.${stretched}.${mac}` },
        "access_token_invalid",
      );
      await expectRefused({ ...pass(alice), "access-token": "a1.garbage.garbage" }, "access_token_invalid");
      await expectRefused({ ...pass(alice), "access-token": alice.queueToken }, "access_token_invalid");
      // Other event: Carol's pass for the other event, at this one.
      await expectRefused(pass(carol), "access_token_invalid");
      // Other buyer: Alice's access token with Bob's queue token (or none).
      await expectRefused({ ...pass(alice), "queue-token": bob.queueToken }, "access_token_invalid");
      await expectRefused({ "access-token": alice.accessToken }, "access_token_invalid");
      // Expired: a pass the cluster itself signed (same secret), its session over.
      const expired = signer.signAccess({ ...real, expiresAtMs: Date.now() - 1000 });
      await expectRefused({ ...pass(alice), "access-token": expired }, "access_token_expired");

      // The real passes work, on every instance, for orders and holds.
      for (let i = 0; i < INSTANCES; i++) {
        assert.equal((await sell(event.id, "orders", pass(alice), i)).status, 201);
        assert.equal((await sell(event.id, "holds", pass(bob), i)).status, 201);
      }
      assert.equal((await sell(other.id, "orders", pass(carol))).status, 201);

      // Replayed: Alice ends her session (leaves); her token, still within its expiry, no longer works.
      const left = await call(0, `/v1/events/${event.id}/queue`, {
        method: "DELETE",
        headers: { "queue-token": alice.queueToken },
      });
      assert.equal(left.status, 204, left.text);
      await expectRefused(pass(alice), "access_token_invalid");
      // Joining again puts her at the back with a new place: the old token stays refused.
      const again = await call<QueueAnswer>(1, `/v1/events/${event.id}/queue`, {
        body: {},
        headers: { "queue-token": alice.queueToken },
      });
      assert.equal(again.status, 201, again.text);
      await expectRefused(pass(alice), "access_token_invalid");
      // The room removed and set up again: Bob's token from the old room is refused.
      const removed = await call(0, `/v1/events/${event.id}/waiting-room`, { method: "DELETE", admin: true });
      assert.equal(removed.status, 204);
      assert.equal((await putRoom(event.id, { admissionRatePerSecond: 1000 })).status, 201);
      await expectRefused(pass(bob), "access_token_invalid");

      // The room turned off: no token needed (within a second on the instances that cached it).
      assert.equal(
        (await call(0, `/v1/events/${other.id}/waiting-room`, { method: "DELETE", admin: true })).status,
        204,
      );
      for (;;) {
        const statuses = await Promise.all(
          Array.from({ length: INSTANCES }, (_, i) => sell(other.id, "orders", {}, i).then((a) => a.status)),
        );
        if (statuses.every((s) => s === 201)) break;
        assert.ok(
          statuses.every((s) => s === 201 || s === 403),
          statuses.join(","),
        );
        await sleep(200);
      }
    });

    it("hands the access token out with the admission time; a purchase sent before that time waits for it at the gate", async () => {
      const event = await createEvent("Early", 100);
      // One buyer a second: the third is given a time two seconds ahead by the pass (look-ahead 3 s).
      assert.equal((await putRoom(event.id, { admissionRatePerSecond: 1 })).status, 201);
      const tokens: string[] = [];
      for (let i = 0; i < 3; i++) {
        const joined = await call<QueueAnswer>(i, `/v1/events/${event.id}/queue`, { body: {} });
        assert.equal(joined.status, 201, joined.text);
        tokens.push(joined.body.queueToken!);
      }
      let answer: HttpAnswer<QueueAnswer & { admitAt: string | null; pollAfterMs: number }>;
      for (;;) {
        answer = await call(1, `/v1/events/${event.id}/queue`, { headers: { "queue-token": tokens[2]! } });
        assert.equal(answer.status, 200, answer.text);
        if (answer.body.admitAt !== null) break;
        await sleep(50);
      }
      const admitAtMs = Date.parse(answer.body.admitAt!);
      assert.ok(Date.now() < admitAtMs, "the third buyer's time is still ahead");
      assert.equal(answer.body.state, "waiting");
      assert.ok(answer.body.accessToken, "the token comes with the admission time");
      assert.ok(answer.body.pollAfterMs >= admitAtMs - Date.now() - 50, `${answer.body.pollAfterMs}`);
      // Bought at once, on another instance: held until the admission time, then sold. Two requests with
      // the same token sent together to that instance: one waits there, the other is refused at once
      // (before the admission time) and sells nothing.
      const early = { "queue-token": tokens[2]!, "access-token": answer.body.accessToken! };
      let refusedAtMs = Infinity;
      const send = async (customerId: string) => {
        const sent = await call<{ code?: string }>(2, `/v1/events/${event.id}/orders`, {
          body: { customerId, quantity: 1 },
          headers: early,
        });
        if (sent.status === 403) refusedAtMs = Date.now();
        return sent;
      };
      const answers = await Promise.all([send("early"), send("early-again")]);
      const bought = answers.find((sent) => sent.status === 201);
      const refused = answers.find((sent) => sent.status === 403);
      assert.ok(bought && refused, answers.map((sent) => `${sent.status} ${sent.text}`).join("\n"));
      assert.equal(refused.body.code, "access_token_invalid");
      assert.ok(refusedAtMs < admitAtMs, "the second request was refused, not held");
      // The store's clock is this host's (SQLite) or the local PostgreSQL's: the answer came no sooner.
      assert.ok(
        Date.now() >= admitAtMs - 2,
        `answered ${admitAtMs - Date.now()} ms before the admission time`,
      );
    });

    it("gates a sale from its first purchase on every instance when the room was turned on before it opened", async () => {
      // Two more instances that trust what they read of a room for a minute: a cache that could be
      // believed across the sale's opening would let the purchases below through.
      const startCached = (i: number) =>
        ServerProcess.start({
          dataDir: setup.dataDir,
          instanceId: `room-cached-${i}`,
          args: [...setup.args, "--waiting-room-cache-ms", "60000"],
          env: { BOXOFFICE_SIGNING_SECRET: SIGNING_SECRET },
        });
      const [a, b] = await Promise.all([startCached(0), startCached(1)]);
      const on = async <T>(
        server: ServerProcess,
        path: string,
        options: Parameters<HttpClient["call"]>[2] = {},
      ) => http.call<T & { code?: string }>(server.url, path, options);
      const order = (server: ServerProcess, eventId: string, kind: "orders" | "holds" = "orders") =>
        on(server, `/v1/events/${eventId}/${kind}`, { body: { customerId: "early-bird", quantity: 1 } });
      try {
        // A scheduled sale: B has looked (no room yet) before the admin turns the room on through A.
        const startsAtMs = Date.now() + 3000;
        const scheduled = await on<Event>(a, "/v1/events", {
          admin: true,
          body: { name: "Scheduled", capacity: 100, salesStartAt: new Date(startsAtMs).toISOString() },
        });
        assert.equal(scheduled.status, 201, scheduled.text);
        const before = await order(b, scheduled.body.id);
        assert.equal(before.status, 409, before.text);
        assert.equal(before.body.code, "sale_not_open");
        const room = await on(a, `/v1/events/${scheduled.body.id}/waiting-room`, {
          method: "PUT",
          admin: true,
          body: { admissionRatePerSecond: 100 },
        });
        assert.equal(room.status, 201, room.text);
        await sleep(Math.max(0, startsAtMs - Date.now()) + 300);
        for (const kind of ["orders", "holds"] as const) {
          const opened = await order(b, scheduled.body.id, kind);
          assert.equal(opened.status, 403, `${kind} at the opening: ${opened.text}`);
          assert.equal(opened.body.code, "access_token_required");
        }

        // A draft: B has looked; the room goes on and the sale is published through A.
        const draft = await on<Event>(a, "/v1/events", {
          admin: true,
          body: { name: "Draft", capacity: 100, state: "draft" },
        });
        assert.equal(draft.status, 201, draft.text);
        assert.equal((await order(b, draft.body.id)).status, 409);
        const draftRoom = await on(a, `/v1/events/${draft.body.id}/waiting-room`, {
          method: "PUT",
          admin: true,
          body: { admissionRatePerSecond: 100 },
        });
        assert.equal(draftRoom.status, 201, draftRoom.text);
        const published = await on(a, `/v1/events/${draft.body.id}/publish`, { method: "POST", admin: true });
        assert.equal(published.status, 200, published.text);
        const afterPublish = await order(b, draft.body.id);
        assert.equal(afterPublish.status, 403, afterPublish.text);
        assert.equal(afterPublish.body.code, "access_token_required");
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    it("gates a sale already open on the instance that turned the room on at once, on the others soon after", async () => {
      const event = await createEvent("Open sale", 1000);
      let buyers = 0;
      const sell = (i: number) =>
        call<{ code?: string }>(i, `/v1/events/${event.id}/orders`, {
          body: { customerId: `walk-in-${buyers++}`, quantity: 1 },
        });
      for (let i = 0; i < INSTANCES; i++) assert.equal((await sell(i)).status, 201);
      assert.equal((await putRoom(event.id, { admissionRatePerSecond: 100 })).status, 201);
      const here = await sell(0);
      assert.equal(here.status, 403, here.text);
      // The others: within their cache's second (1 s by default); never anything but a sale or a refusal.
      for (;;) {
        const statuses = await Promise.all(
          Array.from({ length: INSTANCES }, (_, i) => sell(i).then((answer) => answer.status)),
        );
        assert.ok(
          statuses.every((s) => s === 201 || s === 403),
          statuses.join(","),
        );
        if (statuses.every((s) => s === 403)) break;
        await sleep(100);
      }
    });

    it("shows waiting buyers, admissions, active shoppers and abandonment on /metrics", async () => {
      const later = await createEvent("Metrics, later", 100);
      const now = await createEvent("Metrics, now", 100);
      const inAnHour = new Date(Date.now() + 3600_000).toISOString();
      assert.equal((await putRoom(later.id, { admissionRatePerSecond: 10, opensAt: inAnHour })).status, 201);
      // Opening in 3 s, so that the three join its pre-queue: a join after the opening, within the
      // look-ahead, is answered with its token at once (join-batcher.ts), and the leaver would have it.
      const opensAt = new Date(Date.now() + 3000).toISOString();
      assert.equal((await putRoom(now.id, { admissionRatePerSecond: 1000, opensAt })).status, 201);
      const join = async (eventId: string, i: number) => {
        const joined = await call<QueueAnswer>(i, `/v1/events/${eventId}/queue`, { body: {} });
        assert.equal(joined.status, 201, joined.text);
        return joined.body.queueToken!;
      };
      for (let i = 0; i < 3; i++) await join(later.id, i);
      const collector = await join(now.id, 0);
      const leaver = await join(now.id, 1);
      await join(now.id, 2); // the idler
      const poll = (token: string, i = 0) =>
        call<QueueAnswer>(i, `/v1/events/${now.id}/queue`, { headers: { "queue-token": token } });
      // The collector takes the access token; the leaver is let in but never takes it; the idler is let
      // in and never asks (its session runs on).
      for (;;) {
        const answer = await poll(collector);
        if (answer.body.accessToken) break;
        await sleep(50);
      }
      for (;;) {
        const room = await call<{ admitted: number }>(0, `/v1/events/${now.id}/waiting-room`, {
          admin: true,
        });
        if (room.body.admitted === 3) break;
        await sleep(50);
      }
      await sleep(1100); // every admission time has come (the look-ahead gives them up to 3 s early, at 1 ms apart)
      // Then the collector and the leaver leave: only the leaver's session is abandoned.
      for (const token of [collector, leaver]) {
        const left = await call(1, `/v1/events/${now.id}/queue`, {
          method: "DELETE",
          headers: { "queue-token": token },
        });
        assert.equal(left.status, 204, left.text);
      }
      /** A metric's value for the event, as instance i reports it; null when absent. */
      const metric = async (i: number, name: string, eventId: string): Promise<number | null> => {
        const scraped = await call<string>(i, "/metrics", { admin: true });
        assert.equal(scraped.status, 200, scraped.text);
        const line = scraped.text
          .split("\n")
          .find((l) => l.startsWith(`${name}{`) && l.includes(`event="${eventId}"`));
        return line === undefined ? null : Number(line.split(" ").at(-1));
      };
      // Every instance reports the store's figures.
      for (let i = 0; i < INSTANCES; i++) {
        assert.equal(await metric(i, "boxoffice_waiting_room_waiting", later.id), 3);
        assert.equal(await metric(i, "boxoffice_waiting_room_waiting", now.id), 0);
        assert.equal(await metric(i, "boxoffice_waiting_room_active_shoppers", now.id), 1);
      }
      for (;;) {
        const abandoned = await metric(0, "boxoffice_waiting_room_abandoned", now.id);
        assert.ok(abandoned === 0 || abandoned === 1, `${abandoned}`);
        if (abandoned === 1) break;
        await sleep(100);
      }
      // Admitted per second: rate() over the sum of the instances' counters, which add up to 3.
      let admitted = 0;
      for (let i = 0; i < INSTANCES; i++) {
        admitted += (await metric(i, "boxoffice_waiting_room_admitted_total", now.id)) ?? 0;
      }
      assert.equal(admitted, 3);
    });
  });
}
