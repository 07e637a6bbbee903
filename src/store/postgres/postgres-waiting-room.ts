/**
 * The waiting room on PostgreSQL (migrations/002-waiting-room.sql), in the store's schema. Every writer
 * of a room locks its row first (FOR UPDATE): joins take their places in turn (a batch of joins at a
 * time, see waiting-room/join-batcher.ts). An admission pass first tries the room's pass lock (a
 * transaction-scoped advisory lock) and skips the room if another instance's pass holds it: that one is
 * doing the work, and its transaction is what moves `next_slot_ms`. Every time is the database's clock
 * (clock_timestamp(), read after the row lock is held), so instances whose clocks disagree still open the
 * room at one instant and never let buyers in faster than the rate.
 */
import { randomBytes } from "node:crypto";
import { advisoryKeyFor } from "../../postgres/advisory-key.js";
import type {
  Admission,
  AdmissionRecord,
  CollectedMark,
  ConfigureResult,
  JoinResult,
  PlaceView,
  Room,
  RoomFigures,
  RoomSettings,
  WaitingRoomStore,
} from "../waiting-room-store.js";
import type { PlaceRow, RoomRow } from "../waiting-room-rows.js";
import {
  admissionWindow,
  joinsPreQueue,
  leavingRemovesPlace,
  nextSlotAfter,
  openingMoves,
  PLACE_COLUMNS,
  toPlace,
  toRoom,
} from "../waiting-room-rows.js";
import type { PostgresPool, Transaction } from "./postgres-pool.js";

const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::float8";

/** The statements, for one schema (`s`, quoted). */
function statements(s: string) {
  const room = `${s}.waiting_rooms`;
  const places = `${s}.waiting_room_places`;
  return {
    now: `SELECT ${NOW_MS} AS now_ms`,
    lockRoom: `SELECT * FROM ${room} WHERE event_id = $1 FOR UPDATE`,
    // A pass takes the room's pass lock without waiting (another instance's pass running: skip), then
    // the room's row, waiting for the joins that hold it (they are short; skipping them would starve
    // admission during a surge of joins).
    lockRoomForPass: `SELECT * FROM ${room} WHERE event_id = $1 AND pg_try_advisory_xact_lock($2::bigint) FOR UPDATE`,
    selectRoom: `SELECT * FROM ${room} WHERE event_id = $1`,
    eventExists: `SELECT 1 FROM ${s}.events WHERE id = $1`,
    insertRoom: `
      INSERT INTO ${room} (event_id, generation, admission_rate, max_active, session_seconds, opens_at_ms,
                           prequeue_opens_at_ms)
      VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING RETURNING *`,
    updateRoom: `
      UPDATE ${room} SET admission_rate = $2, max_active = $3, session_seconds = $4, opens_at_ms = $5,
                         prequeue_opens_at_ms = $6
      WHERE event_id = $1 RETURNING *`,
    deleteRoom: `DELETE FROM ${room} WHERE event_id = $1`,
    selectPlace: `SELECT ${PLACE_COLUMNS} FROM ${places} WHERE event_id = $1 AND identity = $2`,
    selectPlaces: `SELECT ${PLACE_COLUMNS} FROM ${places} WHERE event_id = $1 AND identity = ANY($2::text[])`,
    deletePlaces: `DELETE FROM ${places} WHERE event_id = $1 AND identity = ANY($2::text[])`,
    // $2 identities and $4 their random ranks, in order.
    joinPreQueue: `
      WITH counted AS (
        UPDATE ${room} SET prequeue_count = prequeue_count + cardinality($2::text[]) WHERE event_id = $1
      )
      INSERT INTO ${places} (event_id, identity, joined_at_ms, prequeue, draw_rank)
      SELECT $1, identity, $3, 1, rank FROM unnest($2::text[], $4::bigint[]) AS u (identity, rank)
      RETURNING ${PLACE_COLUMNS}`,
    // The next places, in the order of $2: after every place given so far (the pre-queue's count is
    // final once the room opens).
    joinLater: `
      WITH counted AS (
        UPDATE ${room} SET later_count = later_count + cardinality($2::text[]) WHERE event_id = $1
        RETURNING prequeue_count + later_count - cardinality($2::text[]) AS before
      )
      INSERT INTO ${places} (event_id, identity, joined_at_ms, prequeue, place)
      SELECT $1, u.identity, $3, 0, counted.before + u.n
      FROM counted, unnest($2::text[]) WITH ORDINALITY AS u (identity, n)
      RETURNING ${PLACE_COLUMNS}`,
    placeView: `
      SELECT r.*, ${NOW_MS} AS now_ms, p.identity, p.place, p.prequeue, p.joined_at_ms, p.admit_at_ms,
             p.session_ends_at_ms, p.left_at_ms, p.collected_at_ms
      FROM ${room} r LEFT JOIN ${places} p ON p.event_id = r.event_id AND p.identity = $2
      WHERE r.event_id = $1`,
    // $1 events, $2 identities, $3 times, in step.
    markCollected: `
      UPDATE ${places} p SET collected_at_ms = m.at_ms
      FROM unnest($1::text[], $2::text[], $3::bigint[]) AS m (event_id, identity, at_ms)
      WHERE p.event_id = m.event_id AND p.identity = m.identity AND p.collected_at_ms IS NULL`,
    leavePreQueue: `
      WITH gone AS (DELETE FROM ${places} WHERE event_id = $1 AND identity = $2 RETURNING 1)
      UPDATE ${room} SET prequeue_count = prequeue_count - (SELECT count(*) FROM gone) WHERE event_id = $1`,
    // A session cut short ends now (freeing its share of the cap); a waiting buyer is passed over.
    leave: `
      UPDATE ${places} SET left_at_ms = $3,
        session_ends_at_ms = CASE WHEN session_ends_at_ms > $3 THEN $3 ELSE session_ends_at_ms END
      WHERE event_id = $1 AND identity = $2 AND left_at_ms IS NULL`,
    dueRooms: `
      SELECT event_id FROM ${room}
      WHERE opens_at_ms <= ${NOW_MS} AND prequeue_count + later_count > admitted_through
        AND (admission_rate IS NULL OR next_slot_ms <= ${NOW_MS} + $1)`,
    // The draw: the pre-queue in the order of its random ranks gets places 1…P (the identity breaks a
    // tie, which has odds of about P² / 2^49).
    draw: `
      UPDATE ${places} p SET place = drawn.place
      FROM (SELECT identity, row_number() OVER (ORDER BY draw_rank, identity) AS place
            FROM ${places} WHERE event_id = $1 AND prequeue = 1) drawn
      WHERE p.event_id = $1 AND p.identity = drawn.identity`,
    setDrawn: `UPDATE ${room} SET drawn = true WHERE event_id = $1`,
    active: `SELECT count(*)::int AS n FROM ${places} WHERE event_id = $1 AND session_ends_at_ms > $2`,
    // The next buyers in place order, each given start + i * interval (rounded up: never early).
    admitNext: `
      WITH next AS (
        SELECT identity, place, row_number() OVER (ORDER BY place) - 1 AS i
        FROM ${places}
        WHERE event_id = $1 AND place > $2 AND left_at_ms IS NULL AND admit_at_ms IS NULL
        ORDER BY place LIMIT $3
      )
      UPDATE ${places} p
      SET admit_at_ms = ceil($4::float8 + next.i * $5::float8)::bigint,
          session_ends_at_ms = ceil($4::float8 + next.i * $5::float8)::bigint + $6::bigint * 1000
      FROM next WHERE p.event_id = $1 AND p.identity = next.identity
      RETURNING p.place`,
    moveRoom: `UPDATE ${room} SET admitted_through = $2, next_slot_ms = $3 WHERE event_id = $1`,
    figures: `
      SELECT r.event_id AS "eventId",
        count(*) FILTER (WHERE p.admit_at_ms IS NULL AND p.left_at_ms IS NULL AND p.identity IS NOT NULL)::int AS waiting,
        count(*) FILTER (WHERE p.session_ends_at_ms > ${NOW_MS})::int AS active,
        count(*) FILTER (WHERE p.admit_at_ms IS NOT NULL)::int AS admitted,
        count(*) FILTER (WHERE p.admit_at_ms IS NOT NULL AND p.session_ends_at_ms <= ${NOW_MS}
                           AND p.collected_at_ms IS NULL)::int AS abandoned
      FROM ${room} r LEFT JOIN ${places} p ON p.event_id = r.event_id
      GROUP BY r.event_id ORDER BY r.event_id`,
    admissions: `
      SELECT identity, place, prequeue, joined_at_ms, admit_at_ms FROM ${places}
      WHERE event_id = $1 AND admit_at_ms IS NOT NULL ORDER BY place`,
  };
}

type Statements = ReturnType<typeof statements>;

export class PostgresWaitingRoom implements WaitingRoomStore {
  readonly #pool: PostgresPool;
  readonly #sql: Statements;

  /** `quotedSchema`: the store's schema, already quoted as an identifier. */
  constructor(pool: PostgresPool, quotedSchema: string) {
    this.#pool = pool;
    this.#sql = statements(quotedSchema);
  }

  async #nowMs(tx: Transaction): Promise<number> {
    const [row] = await tx.rows<{ now_ms: number }>(this.#sql.now);
    return Number(row!.now_ms);
  }

  async configure(eventId: string, settings: RoomSettings): Promise<ConfigureResult> {
    return this.#pool.transaction(
      null,
      async (tx, [locked]) => {
        const existing = (locked as RoomRow[])[0];
        const values = [
          settings.admissionRatePerSecond,
          settings.maxActiveShoppers,
          settings.sessionSeconds,
          settings.opensAtMs,
          settings.preQueueOpensAtMs,
        ];
        if (existing) {
          const room = toRoom(existing);
          const nowMs = await this.#nowMs(tx);
          if (openingMoves(room, settings, nowMs)) {
            return { ok: false, reason: "already_open", opensAtMs: room.opensAtMs } as const;
          }
          const [row] = await tx.rows<RoomRow>(this.#sql.updateRoom, [eventId, ...values]);
          return { ok: true, room: toRoom(row!), created: false } as const;
        }
        const [row] = await tx.rows<RoomRow>(this.#sql.insertRoom, [
          eventId,
          randomBytes(8).toString("hex"),
          ...values,
        ]);
        if (!row) throw new Error("a waiting room was created at the same time; try again");
        return { ok: true, room: toRoom(row), created: true } as const;
      },
      [{ text: this.#sql.lockRoom, values: [eventId] }],
    );
  }

  async room(eventId: string): Promise<Room | null> {
    const [[row]] = await this.#pool.read<[RoomRow]>([{ text: this.#sql.selectRoom, values: [eventId] }]);
    return row ? toRoom(row) : null;
  }

  async remove(eventId: string): Promise<boolean> {
    const rows = await this.#pool.transaction(null, (tx) =>
      tx.rows(`${this.#sql.deleteRoom} RETURNING 1`, [eventId]),
    );
    return rows.length > 0;
  }

  async join(
    eventId: string,
    identities: readonly string[],
    randomRank: () => number,
  ): Promise<JoinResult[]> {
    const distinct = [...new Set(identities)];
    return this.#pool.transaction(
      null,
      async (tx, [locked, clock, places]): Promise<JoinResult[]> => {
        const row = (locked as RoomRow[])[0];
        if (!row) return identities.map(() => ({ ok: false, reason: "no_room" }) as const);
        let room = toRoom(row);
        // Read after the row lock is held (the statements of the opening run in order): a join that sees
        // a time before the opening commits before any pass that draws (the pass waits for the same row).
        const nowMs = Number((clock as { now_ms: number }[])[0]!.now_ms);
        const existing = new Map((places as PlaceRow[]).map((place) => [place.identity, place]));
        const open = nowMs >= room.preQueueOpensAtMs;
        const preQueue = joinsPreQueue(room, nowMs);
        // Who gets a new place, in the order given, once each.
        const newcomers = open
          ? distinct.filter((identity) => {
              const place = existing.get(identity);
              return !place || place.left_at_ms !== null;
            })
          : [];
        if (newcomers.length > 0) {
          const rejoining = newcomers.filter((identity) => existing.has(identity));
          if (rejoining.length > 0) await tx.rows(this.#sql.deletePlaces, [eventId, rejoining]);
          const joinedAtMs = Math.floor(nowMs);
          const rows = preQueue
            ? await tx.rows<PlaceRow>(this.#sql.joinPreQueue, [
                eventId,
                newcomers,
                joinedAtMs,
                newcomers.map(() => String(randomRank())),
              ])
            : await tx.rows<PlaceRow>(this.#sql.joinLater, [eventId, newcomers, joinedAtMs]);
          for (const placeRow of rows) existing.set(placeRow.identity, placeRow);
          // The counters as the statement above left them (the row is locked: nobody else moved them).
          room = preQueue
            ? { ...room, preQueueCount: room.preQueueCount + newcomers.length }
            : { ...room, laterCount: room.laterCount + newcomers.length };
        }
        const fresh = new Set(newcomers);
        return identities.map((identity): JoinResult => {
          const place = existing.get(identity);
          if (!open && (!place || place.left_at_ms !== null)) {
            return { ok: false, reason: "not_open", preQueueOpensAtMs: room.preQueueOpensAtMs };
          }
          const created = fresh.delete(identity);
          return { ok: true, place: toPlace(place!), room, created, nowMs };
        });
      },
      [
        { text: this.#sql.lockRoom, values: [eventId] },
        { text: this.#sql.now },
        { text: this.#sql.selectPlaces, values: [eventId, distinct] },
      ],
    );
  }

  async place(eventId: string, identity: string): Promise<PlaceView | null> {
    const [[row]] = await this.#pool.read<[RoomRow & Partial<PlaceRow> & { now_ms: number }]>([
      { text: this.#sql.placeView, values: [eventId, identity] },
    ]);
    if (!row) return null;
    return {
      room: toRoom(row),
      place: row.identity ? toPlace(row as PlaceRow) : null,
      nowMs: Number(row.now_ms),
    };
  }

  async markCollected(marks: readonly CollectedMark[]): Promise<void> {
    if (marks.length === 0) return;
    await this.#pool.transaction(null, (tx) =>
      tx.rows(this.#sql.markCollected, [
        marks.map((mark) => mark.eventId),
        marks.map((mark) => mark.identity),
        marks.map((mark) => String(Math.floor(mark.atMs))),
      ]),
    );
  }

  async leave(eventId: string, identity: string): Promise<boolean> {
    return this.#pool.transaction(
      null,
      async (tx, [locked]) => {
        const row = (locked as RoomRow[])[0];
        if (!row) return false;
        const room = toRoom(row);
        const nowMs = Math.floor(await this.#nowMs(tx));
        const [place] = await tx.rows<PlaceRow>(this.#sql.selectPlace, [eventId, identity]);
        if (!place || place.left_at_ms !== null) return false;
        if (leavingRemovesPlace(room, toPlace(place), nowMs)) {
          // In the pre-queue before the opening: the place goes away altogether.
          await tx.rows(this.#sql.leavePreQueue, [eventId, identity]);
        } else {
          await tx.rows(this.#sql.leave, [eventId, identity, nowMs]);
        }
        return true;
      },
      [{ text: this.#sql.lockRoom, values: [eventId] }],
    );
  }

  async admit(lookAheadMs: number): Promise<Admission[]> {
    // A look without any lock first: most passes of most instances find nothing due.
    const [due] = await this.#pool.read<[{ event_id: string }]>([
      { text: this.#sql.dueRooms, values: [lookAheadMs] },
    ]);
    const admissions: Admission[] = [];
    for (const { event_id: eventId } of due) {
      const admitted = await this.#pool.transaction(
        null,
        async (tx, [locked]) => {
          const row = (locked as RoomRow[])[0];
          // Another instance's pass holds the row: it is letting these buyers in.
          if (!row) return 0;
          return this.#admitRoom(tx, toRoom(row), lookAheadMs);
        },
        [
          {
            text: this.#sql.lockRoomForPass,
            values: [eventId, advisoryKeyFor(`waiting-room-pass:${eventId}`).toString()],
          },
        ],
      );
      if (admitted > 0) admissions.push({ eventId, admitted });
    }
    return admissions;
  }

  async #admitRoom(tx: Transaction, room: Room, lookAheadMs: number): Promise<number> {
    const nowMs = await this.#nowMs(tx);
    if (nowMs < room.opensAtMs) return 0;
    if (!room.drawn) {
      await tx.rows(this.#sql.draw, [room.eventId]);
      await tx.rows(this.#sql.setDrawn, [room.eventId]);
    }
    let active = 0;
    if (room.maxActiveShoppers !== null) {
      const [row] = await tx.rows<{ n: number }>(this.#sql.active, [room.eventId, Math.floor(nowMs)]);
      active = Number(row!.n);
    }
    const window = admissionWindow(room, nowMs, lookAheadMs, active);
    if (window.count <= 0) return 0;
    const admitted = await tx.rows<{ place: number }>(this.#sql.admitNext, [
      room.eventId,
      room.admittedThrough,
      Number.isFinite(window.count) ? window.count : null,
      window.startMs,
      window.intervalMs,
      room.sessionSeconds,
    ]);
    if (admitted.length === 0) return 0;
    const through = Math.max(...admitted.map((row) => Number(row.place)));
    const nextSlotMs = nextSlotAfter(room, window, admitted.length);
    await tx.rows(this.#sql.moveRoom, [room.eventId, through, nextSlotMs]);
    return admitted.length;
  }

  async figures(): Promise<RoomFigures[]> {
    const [rows] = await this.#pool.read<[RoomFigures]>([{ text: this.#sql.figures }]);
    return rows;
  }

  async admissions(eventId: string): Promise<AdmissionRecord[]> {
    const [rows] = await this.#pool.read<
      [{ identity: string; place: number; prequeue: number; joined_at_ms: string; admit_at_ms: string }]
    >([{ text: this.#sql.admissions, values: [eventId] }]);
    return rows.map((row) => ({
      identity: row.identity,
      place: Number(row.place),
      preQueue: Number(row.prequeue) === 1,
      joinedAtMs: Number(row.joined_at_ms),
      admitAtMs: Number(row.admit_at_ms),
    }));
  }
}
