/**
 * Poison-proof batches, part of the store contract (run on SQLite in both layouts and on PostgreSQL,
 * direct and through PgBouncer): a command the store cannot take fails alone.
 *
 * The property: random honest commands run as batches against one fresh event (the reference), and
 * the very same commands, with generated hostile commands mixed in, run against another fresh event
 * with the same plan. Hostile commands are built at the Store interface, past the HTTP layer's
 * validation, since the store must defend itself: NUL and other control characters, lone surrogates,
 * huge strings, malformed or duplicate seats, malformed ids, and extreme numbers (0, negative, 2^53,
 * NaN, infinities, fractions, a quantity that is not the seat count, a hold's lifetime out of range).
 * Every honest command must answer exactly as in the reference, every hostile one must be refused,
 * the counters and seat maps must end equal, and the store must sell normally afterwards.
 *
 * The honest customers include ids that look like SQL and quoting (`O'Brien`, `'); DROP TABLE …`):
 * they are valid ids and must be sold to like any other.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { NewEventRequest } from "../../src/domain/event.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId, newHoldId, newOrderId } from "../../src/domain/ids.js";
import type { Command, Hold, Order, Outcome, Selection } from "../../src/domain/sale.js";
import type { Store } from "../../src/store/store.js";

const T0 = new Date("2032-05-01T09:00:00.000Z");

/** Valid customer ids, some of which would break a statement that pasted them into its text. */
const HONEST_CUSTOMERS = [
  "c0",
  "O'Brien",
  "'); DROP TABLE events; --",
  'say "hi" \\ back\\slash',
  "🎟️ fan Ünïcødé",
  "$1 $2 ::text[] {a,b}",
];

/** An honest purchase or hold; `key` names an Idempotency-Key shared by equal ops (a retry). */
interface HonestTake {
  op: "purchase" | "hold";
  customer: number;
  n: number;
  seats: number[];
  key: number | null;
}
/** An honest confirm, release or cancel of what the first batch made (by its position). */
interface HonestFollow {
  op: "confirm" | "release" | "cancel";
  target: number;
}

const takeArbitrary: fc.Arbitrary<HonestTake> = fc.record({
  op: fc.constantFrom("purchase" as const, "hold" as const),
  customer: fc.nat(HONEST_CUSTOMERS.length - 1),
  n: fc.integer({ min: 1, max: 3 }),
  seats: fc.array(fc.nat(9), { minLength: 1, maxLength: 3 }),
  key: fc.option(fc.nat(2), { nil: null }),
});
const followArbitrary: fc.Arbitrary<HonestFollow> = fc.record({
  op: fc.constantFrom("confirm" as const, "release" as const, "cancel" as const),
  target: fc.nat(7),
});

/** Characters no stored text may hold: control characters, lone surrogates, separators. */
const HOSTILE_CHARS = ["\u0000", "\ud800", "\udfff", "\u0001", "\u001b", "\u007f", "\u0085", "\u2028", "\n"];
/** Text that holds at least one hostile character, anywhere. */
const hostileText: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ maxLength: 4 }),
    fc.constantFrom(...HOSTILE_CHARS),
    fc.string({ maxLength: 4 }),
    // Not a surrogate: after a lone high surrogate it would make a valid pair.
    fc.constantFrom(...HOSTILE_CHARS.filter((c) => !/[\ud800-\udfff]/.test(c)), ""),
  )
  .map(([before, bad, after, more]) => `${before}${bad}${after}${more}`);
/** Strings the store must refuse whatever they are used for. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  hostileText,
  fc.constantFrom("", "   ", "x".repeat(100_000), `${"é".repeat(300)}`),
);
const hostileSeat: fc.Arbitrary<string> = fc.oneof(
  hostileText.map((text) => `A-1-${text}`),
  hostileText.map((text) => `A${text}-1-1`),
  fc.constantFrom(
    "A-0-1",
    "A-1-01",
    "A-1-999999",
    " A-1-1",
    "A-1-1 ",
    "A_1_1",
    "A-1-1-1",
    `A-${"9".repeat(50_000)}-1`,
    "'); DROP TABLE seat_claims; --",
  ),
);
const hostileNumber: fc.Arbitrary<number> = fc.constantFrom(
  0,
  -1,
  -(2 ** 31),
  2 ** 31,
  2 ** 53,
  Number.MAX_SAFE_INTEGER + 2,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1.5,
  1e308,
);

/** A command built to be refused, described so that a failing case prints readably. */
interface Poison {
  what: string;
  command: (kind: "general" | "seated", seatIds: string[]) => Command;
}

const fine = { customerId: "poisoner", ttlSeconds: 60 };
const poisonArbitrary: fc.Arbitrary<Poison> = fc.oneof(
  hostileString.map((customerId) => ({
    what: `customerId ${JSON.stringify(customerId.slice(0, 40))}`,
    command: (kind: "general" | "seated") => ({
      type: "purchase" as const,
      customerId,
      selection: kind === "general" ? { quantity: 1, seats: null } : { quantity: 1, seats: ["A-1-1"] },
      idempotency: null,
    }),
  })),
  fc.array(hostileSeat, { minLength: 1, maxLength: 3 }).map((bad) => ({
    what: `seats ${JSON.stringify(bad.map((seat) => seat.slice(0, 40)))}`,
    command: (_kind: "general" | "seated", seatIds: string[]) => {
      const seats = [seatIds[0] as string, ...bad];
      return {
        type: "hold" as const,
        ...fine,
        selection: { quantity: seats.length, seats },
        idempotency: { key: "poison-seats", fingerprint: "fp-poison" },
      };
    },
  })),
  fc.nat(9).map((i) => ({
    what: `duplicate seat ${i}`,
    command: (_kind: "general" | "seated", seatIds: string[]) => {
      const seat = seatIds[i] as string;
      return {
        type: "purchase" as const,
        customerId: fine.customerId,
        selection: { quantity: 2, seats: [seat, seat] },
        idempotency: { key: "poison-duplicate", fingerprint: "fp-poison" },
      };
    },
  })),
  fc.tuple(hostileNumber, fc.boolean()).map(([quantity, hold]) => ({
    what: `quantity ${quantity}`,
    command: (kind: "general" | "seated", seatIds: string[]) => {
      const selection = (
        kind === "general" ? { quantity, seats: null } : { quantity, seats: [seatIds[1] as string] }
      ) as Selection;
      return hold
        ? { type: "hold" as const, ...fine, selection, idempotency: null }
        : { type: "purchase" as const, customerId: fine.customerId, selection, idempotency: null };
    },
  })),
  hostileNumber.map((ttlSeconds) => ({
    what: `ttlSeconds ${ttlSeconds}`,
    command: (kind: "general" | "seated", seatIds: string[]) => ({
      type: "hold" as const,
      customerId: fine.customerId,
      selection:
        kind === "general" ? { quantity: 1, seats: null } : { quantity: 1, seats: [seatIds[2] as string] },
      ttlSeconds,
      idempotency: null,
    }),
  })),
  fc.tuple(hostileString, fc.boolean()).map(([text, inKey]) => ({
    what: `${inKey ? "key" : "fingerprint"} ${JSON.stringify(text.slice(0, 40))}`,
    command: (kind: "general" | "seated", seatIds: string[]) => ({
      type: "purchase" as const,
      customerId: fine.customerId,
      selection:
        kind === "general" ? { quantity: 1, seats: null } : { quantity: 1, seats: [seatIds[3] as string] },
      idempotency: inKey
        ? { key: text, fingerprint: "fp" }
        : { key: "poison-fingerprint", fingerprint: text },
    }),
  })),
  fc
    .tuple(
      fc.oneof(hostileString, fc.constant("' OR '1'='1")),
      fc.constantFrom("confirm", "release", "cancel"),
    )
    .map(([id, op]) => ({
      what: `${op} of ${JSON.stringify(id.slice(0, 40))}`,
      command: (): Command =>
        op === "cancel"
          ? { type: "cancel-order", orderId: `ord_${id}` }
          : op === "release"
            ? { type: "release-hold", holdId: id }
            : { type: "confirm-hold", holdId: `hld_${id}`, idempotency: null },
    })),
  // Not even the shape of a command: what a caller that skipped the types could send.
  fc
    .constantFrom(
      {
        what: "seats not a list",
        command: () => ({ ...purchaseOf("x"), selection: { quantity: 1, seats: "A-1-1" } }),
      },
      {
        what: "seat not a string",
        command: () => ({ ...purchaseOf("x"), selection: { quantity: 1, seats: [11] } }),
      },
      { what: "customerId a number", command: () => ({ ...purchaseOf("x"), customerId: 7 }) },
      { what: "no selection", command: () => ({ ...purchaseOf("x"), selection: null }) },
      { what: "unknown type", command: () => ({ type: "drop-table", customerId: "x" }) },
    )
    .map((poison) => ({ what: poison.what, command: () => poison.command() as unknown as Command })),
);

function purchaseOf(customerId: string): Command {
  return { type: "purchase", customerId, selection: { quantity: 1, seats: null }, idempotency: null };
}

/** What an outcome says, without the ids and times that differ between two events. */
function gist(outcome: Outcome | undefined): unknown {
  if (!outcome) return "missing";
  if (!outcome.ok) {
    return {
      ok: false,
      code: outcome.refusal.code,
      seats: outcome.refusal.seats ? [...outcome.refusal.seats].sort() : undefined,
      replayed: outcome.replayed,
    };
  }
  const value = outcome.value as Order | Hold | null;
  return {
    ok: true,
    replayed: outcome.replayed,
    value: value && {
      customerId: value.customerId,
      quantity: value.quantity,
      seats: value.seats,
      status: value.status,
    },
  };
}

/** Registers the poison property for one backend; `getStore` answers once the contract's fixture is up. */
export function describePoisonContract(getStore: () => Store): void {
  describe("poison-proof batches (property)", () => {
    for (const kind of ["general", "seated"] as const) {
      it(`a ${kind} batch answers every honest command as without the hostile ones, and sells on`, async () => {
        const store = getStore();
        await fc.assert(
          fc.asyncProperty(
            fc.array(takeArbitrary, { minLength: 1, maxLength: 6 }),
            fc.array(fc.oneof(followArbitrary, takeArbitrary), { minLength: 1, maxLength: 6 }),
            fc.array(fc.tuple(fc.nat(12), poisonArbitrary), { minLength: 1, maxLength: 4 }),
            async (first, second, poisons) => {
              const request: NewEventRequest =
                kind === "general"
                  ? { name: "poison", capacity: 12, maxPerOrder: 3, maxPerCustomer: 5 }
                  : {
                      name: "poison",
                      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 5 }] },
                      maxPerOrder: 3,
                      maxPerCustomer: 5,
                    };
              const reference = planEvent(request, newEventId(), T0);
              const poisoned = planEvent(request, newEventId(), T0);
              await store.createEvent(reference);
              await store.createEvent(poisoned);
              const seatIds = [1, 2].flatMap((row) => [1, 2, 3, 4, 5].map((seat) => `A-${row}-${seat}`));

              const take = (op: HonestTake): Command => {
                const selection: Selection =
                  kind === "general"
                    ? { quantity: op.n, seats: null }
                    : (() => {
                        const seats = [...new Set(op.seats.map((i) => seatIds[i] as string))];
                        return { quantity: seats.length, seats };
                      })();
                const customerId = HONEST_CUSTOMERS[op.customer] as string;
                const idempotency =
                  op.key === null ? null : { key: `k${op.key}`, fingerprint: JSON.stringify(op) };
                return op.op === "purchase"
                  ? { type: "purchase", customerId, selection, idempotency }
                  : { type: "hold", customerId, selection, ttlSeconds: 600, idempotency };
              };
              /** Runs honest commands on both events, the poisoned one with hostile commands mixed in. */
              const both = async (
                honest: (eventId: string) => Command[],
                now: Date,
              ): Promise<{ want: Outcome[]; got: Outcome[] }> => {
                const want = await store.execute(reference.id, honest(reference.id), null, now);
                const mixed: { command: Command; poison: Poison | null }[] = honest(poisoned.id).map(
                  (command) => ({ command, poison: null }),
                );
                for (const [at, poison] of poisons) {
                  mixed.splice(at % (mixed.length + 1), 0, {
                    command: poison.command(kind, seatIds),
                    poison,
                  });
                }
                const outcomes = await store.execute(
                  poisoned.id,
                  mixed.map((entry) => entry.command),
                  null,
                  now,
                );
                assert.equal(outcomes.length, mixed.length);
                const got: Outcome[] = [];
                outcomes.forEach((outcome, i) => {
                  const poison = mixed[i]?.poison;
                  if (!poison) got.push(outcome);
                  else assert.equal(outcome.ok, false, `a hostile command was taken: ${poison.what}`);
                });
                assert.deepEqual(
                  got.map(gist),
                  want.map(gist),
                  `with ${poisons.map(([, p]) => p.what).join("; ")}`,
                );
                return { want, got };
              };

              const firstRun = await both(() => first.map(take), T0);
              const madeIn = (outcomes: Outcome[]) =>
                outcomes.map((outcome) => (outcome.ok ? (outcome.value as Order | Hold | null) : null));
              const made = { [reference.id]: madeIn(firstRun.want), [poisoned.id]: madeIn(firstRun.got) };
              const follow = (eventId: string, op: HonestFollow): Command | null => {
                const target = made[eventId]?.filter((value) => value !== null)[op.target % first.length];
                if (!target) return null;
                const isHold = target.id.startsWith("hld_");
                if (op.op === "cancel")
                  return { type: "cancel-order", orderId: isHold ? newOrderId(eventId) : target.id };
                const holdId = isHold ? target.id : newHoldId(eventId);
                return op.op === "confirm"
                  ? { type: "confirm-hold", holdId, idempotency: null }
                  : { type: "release-hold", holdId };
              };
              await both(
                (eventId) =>
                  second
                    .map((op) => ("target" in op ? follow(eventId, op) : take(op)))
                    .filter((command): command is Command => command !== null),
                new Date(T0.getTime() + 1000),
              );

              const [left, right] = [await store.getEvent(reference.id), await store.getEvent(poisoned.id)];
              assert.deepEqual(
                { sold: right?.sold, held: right?.held },
                { sold: left?.sold, held: left?.held },
              );
              if (kind === "seated") {
                const statuses = async (id: string) =>
                  (await store.getSeatMap(id))?.sections.flatMap((s) => s.rows.flatMap((r) => r.seats));
                assert.deepEqual(await statuses(poisoned.id), await statuses(reference.id));
              }
              // The store sells on: the same purchase answers the same on both, and a fresh event sells.
              const after = (eventId: string) =>
                store.execute(
                  eventId,
                  [take({ op: "purchase", customer: 0, n: 1, seats: [9], key: null })],
                  null,
                  T0,
                );
              assert.deepEqual((await after(poisoned.id)).map(gist), (await after(reference.id)).map(gist));
              const fresh = planEvent(request, newEventId(), T0);
              await store.createEvent(fresh);
              const [sold] = await after(fresh.id);
              assert.equal(sold?.ok, true, `a fresh event did not sell: ${JSON.stringify(sold)}`);
            },
          ),
          { numRuns: 20 },
        );
      });
    }
  });
}
