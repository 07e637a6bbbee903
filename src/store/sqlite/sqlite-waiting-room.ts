/**
 * The waiting room on SQLite: the catalog file's `waiting_rooms` and `waiting_room_places`
 * (migrations/catalog/002-waiting-room.sql). Every write is an IMMEDIATE transaction, so the processes of
 * the host take turns on the catalog's write lock; reads never wait (WAL). The clock is the host's: every
 * process that shares the files runs on it.
 */
import { randomBytes } from "node:crypto";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
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
import { mapSqliteError } from "./sqlite-database.js";
import { immediate } from "../../sqlite/immediate.js";

const ROOM_ROW = "SELECT * FROM waiting_rooms WHERE event_id = ?";
const PLACE_ROW = `SELECT ${PLACE_COLUMNS} FROM waiting_room_places WHERE event_id = ? AND identity = ?`;

export class SqliteWaitingRoom implements WaitingRoomStore {
  readonly #db: () => SqliteDatabase;
  /**
   * The statements of the hot paths (a buyer's poll, the access check of every purchase), compiled once
   * per connection: compiling them again on every call was a third of a poll's CPU time.
   */
  readonly #statements = new WeakMap<SqliteDatabase, Map<string, unknown>>();

  constructor(db: () => SqliteDatabase) {
    this.#db = db;
  }

  #run<T>(work: (db: SqliteDatabase) => T, what: string): T {
    try {
      return work(this.#db());
    } catch (error) {
      throw mapSqliteError(error, what);
    }
  }

  #write<T>(work: (db: SqliteDatabase) => T, what: string): T {
    return this.#run((db) => immediate(db, () => work(db)), what);
  }

  #cached<S>(db: SqliteDatabase, sql: string, prepare: () => S): S {
    let statements = this.#statements.get(db);
    if (!statements) this.#statements.set(db, (statements = new Map()));
    let statement = statements.get(sql) as S | undefined;
    if (statement === undefined) statements.set(sql, (statement = prepare()));
    return statement;
  }

  /** A statement that runs with every join (a surge's batches of them), compiled once. */
  #statement(db: SqliteDatabase, sql: string) {
    return this.#cached(db, sql, () => db.prepare(sql));
  }

  #roomRow(db: SqliteDatabase, eventId: string): RoomRow | undefined {
    return this.#cached(db, ROOM_ROW, () => db.prepare<[string], RoomRow>(ROOM_ROW)).get(eventId);
  }

  #placeRow(db: SqliteDatabase, eventId: string, identity: string): PlaceRow | undefined {
    return this.#cached(db, PLACE_ROW, () => db.prepare<[string, string], PlaceRow>(PLACE_ROW)).get(
      eventId,
      identity,
    );
  }

  async configure(eventId: string, settings: RoomSettings): Promise<ConfigureResult> {
    return this.#write((db) => {
      const existing = this.#roomRow(db, eventId);
      const nowMs = Date.now();
      if (existing) {
        const room = toRoom(existing);
        if (openingMoves(room, settings, nowMs)) {
          return { ok: false, reason: "already_open", opensAtMs: room.opensAtMs } as const;
        }
        db.prepare(
          `UPDATE waiting_rooms SET admission_rate = ?, max_active = ?, session_seconds = ?, opens_at_ms = ?,
             prequeue_opens_at_ms = ? WHERE event_id = ?`,
        ).run(
          settings.admissionRatePerSecond,
          settings.maxActiveShoppers,
          settings.sessionSeconds,
          settings.opensAtMs,
          settings.preQueueOpensAtMs,
          eventId,
        );
      } else {
        db.prepare(
          `INSERT INTO waiting_rooms (event_id, generation, admission_rate, max_active, session_seconds,
             opens_at_ms, prequeue_opens_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          eventId,
          randomBytes(8).toString("hex"),
          settings.admissionRatePerSecond,
          settings.maxActiveShoppers,
          settings.sessionSeconds,
          settings.opensAtMs,
          settings.preQueueOpensAtMs,
        );
      }
      return { ok: true, room: toRoom(this.#roomRow(db, eventId)!), created: !existing } as const;
    }, "configure waiting room");
  }

  async room(eventId: string): Promise<Room | null> {
    return this.#run((db) => {
      const row = this.#roomRow(db, eventId);
      return row ? toRoom(row) : null;
    }, "read waiting room");
  }

  async remove(eventId: string): Promise<boolean> {
    return this.#write((db) => {
      db.prepare("DELETE FROM waiting_room_places WHERE event_id = ?").run(eventId);
      return db.prepare("DELETE FROM waiting_rooms WHERE event_id = ?").run(eventId).changes > 0;
    }, "remove waiting room");
  }

  async join(
    eventId: string,
    identities: readonly string[],
    randomRank: () => number,
  ): Promise<JoinResult[]> {
    return this.#write((db) => {
      const results: JoinResult[] = [];
      const nowMs = Date.now();
      for (const identity of identities) {
        const row = this.#roomRow(db, eventId);
        if (!row) {
          results.push({ ok: false, reason: "no_room" });
          continue;
        }
        const room = toRoom(row);
        const existing = this.#placeRow(db, eventId, identity);
        if (existing && existing.left_at_ms === null) {
          results.push({ ok: true, place: toPlace(existing), room, created: false, nowMs });
          continue;
        }
        if (nowMs < room.preQueueOpensAtMs) {
          results.push({ ok: false, reason: "not_open", preQueueOpensAtMs: room.preQueueOpensAtMs });
          continue;
        }
        // The opening is decided by the clock inside the write transaction: a join that reads a time
        // before the opening commits before any pass that draws (passes take the same write lock).
        const preQueue = joinsPreQueue(room, nowMs);
        if (existing) {
          this.#statement(db, "DELETE FROM waiting_room_places WHERE event_id = ? AND identity = ?").run(
            eventId,
            identity,
          );
        }
        if (preQueue) {
          this.#statement(
            db,
            "UPDATE waiting_rooms SET prequeue_count = prequeue_count + 1 WHERE event_id = ?",
          ).run(eventId);
          this.#statement(
            db,
            `INSERT INTO waiting_room_places (event_id, identity, joined_at_ms, prequeue, draw_rank)
             VALUES (?, ?, ?, 1, ?)`,
          ).run(eventId, identity, nowMs, randomRank());
        } else {
          const place = room.preQueueCount + room.laterCount + 1;
          this.#statement(
            db,
            "UPDATE waiting_rooms SET later_count = later_count + 1 WHERE event_id = ?",
          ).run(eventId);
          this.#statement(
            db,
            `INSERT INTO waiting_room_places (event_id, identity, joined_at_ms, prequeue, place)
             VALUES (?, ?, ?, 0, ?)`,
          ).run(eventId, identity, nowMs, place);
        }
        const place = toPlace(this.#placeRow(db, eventId, identity)!);
        results.push({ ok: true, place, room: toRoom(this.#roomRow(db, eventId)!), created: true, nowMs });
      }
      return results;
    }, "join waiting room");
  }

  async place(eventId: string, identity: string): Promise<PlaceView | null> {
    return this.#run((db) => {
      const row = this.#roomRow(db, eventId);
      if (!row) return null;
      const place = this.#placeRow(db, eventId, identity);
      return { room: toRoom(row), place: place ? toPlace(place) : null, nowMs: Date.now() };
    }, "read queue place");
  }

  async markCollected(marks: readonly CollectedMark[]): Promise<void> {
    if (marks.length === 0) return;
    this.#write((db) => {
      const mark = db.prepare(
        `UPDATE waiting_room_places SET collected_at_ms = ?
         WHERE event_id = ? AND identity = ? AND collected_at_ms IS NULL`,
      );
      for (const { eventId, identity, atMs } of marks) mark.run(Math.floor(atMs), eventId, identity);
    }, "note access collected");
  }

  async leave(eventId: string, identity: string): Promise<boolean> {
    return this.#write((db) => {
      const row = db
        .prepare<[string, string], PlaceRow>(
          `SELECT ${PLACE_COLUMNS} FROM waiting_room_places WHERE event_id = ? AND identity = ?`,
        )
        .get(eventId, identity);
      if (!row || row.left_at_ms !== null) return false;
      const nowMs = Date.now();
      const roomRow = this.#roomRow(db, eventId);
      const room = roomRow ? toRoom(roomRow) : null;
      if (room && leavingRemovesPlace(room, toPlace(row), nowMs)) {
        // In the pre-queue before the opening: the place goes away altogether (no later place exists yet).
        db.prepare("DELETE FROM waiting_room_places WHERE event_id = ? AND identity = ?").run(
          eventId,
          identity,
        );
        db.prepare("UPDATE waiting_rooms SET prequeue_count = prequeue_count - 1 WHERE event_id = ?").run(
          eventId,
        );
        return true;
      }
      // A session cut short ends now (it frees its share of the cap); a waiting buyer is passed over.
      db.prepare(
        `UPDATE waiting_room_places SET left_at_ms = ?,
           session_ends_at_ms = CASE WHEN session_ends_at_ms > ? THEN ? ELSE session_ends_at_ms END
         WHERE event_id = ? AND identity = ?`,
      ).run(nowMs, nowMs, nowMs, eventId, identity);
      return true;
    }, "leave waiting room");
  }

  async admit(lookAheadMs: number): Promise<Admission[]> {
    const nowMs = Date.now();
    // A look without the write lock first: most passes of most instances find nothing due.
    const due = this.#run(
      (db) =>
        db
          .prepare<[number, number], { event_id: string }>(
            `SELECT event_id FROM waiting_rooms
             WHERE opens_at_ms <= ? AND prequeue_count + later_count > admitted_through
               AND (admission_rate IS NULL OR next_slot_ms <= ?)`,
          )
          .all(nowMs, nowMs + lookAheadMs)
          .map((row) => row.event_id),
      "look for due admissions",
    );
    const admissions: Admission[] = [];
    for (const eventId of due) {
      const admitted = this.#write((db) => this.#admitRoom(db, eventId, lookAheadMs), "admit");
      if (admitted > 0) admissions.push({ eventId, admitted });
    }
    return admissions;
  }

  /** One room's pass, inside the write transaction: the draw if due, then the next admissions. */
  #admitRoom(db: SqliteDatabase, eventId: string, lookAheadMs: number): number {
    const row = this.#roomRow(db, eventId);
    const nowMs = Date.now();
    if (!row) return 0;
    const room = toRoom(row);
    if (nowMs < room.opensAtMs) return 0;
    if (!room.drawn) {
      // The draw: the pre-queue in the order of its random ranks gets places 1…P (the identity breaks a
      // tie, which has odds of about P² / 2^49).
      db.prepare(
        `UPDATE waiting_room_places SET place = -drawn.place
         FROM (SELECT identity, row_number() OVER (ORDER BY draw_rank, identity) AS place
               FROM waiting_room_places WHERE event_id = @eventId AND prequeue = 1) AS drawn
         WHERE waiting_room_places.event_id = @eventId AND waiting_room_places.identity = drawn.identity`,
      ).run({ eventId });
      // Negative first, then flipped: the unique index on place never sees two rows with one place.
      db.prepare(
        "UPDATE waiting_room_places SET place = -place WHERE event_id = ? AND prequeue = 1 AND place < 0",
      ).run(eventId);
      db.prepare("UPDATE waiting_rooms SET drawn = 1 WHERE event_id = ?").run(eventId);
    }
    const active =
      room.maxActiveShoppers === null
        ? 0
        : db
            .prepare<[string, number], { n: number }>(
              `SELECT count(*) AS n FROM waiting_room_places
               WHERE event_id = ? AND session_ends_at_ms > ?`,
            )
            .get(eventId, nowMs)!.n;
    const window = admissionWindow(room, nowMs, lookAheadMs, active);
    if (window.count <= 0) return 0;
    const next = db
      .prepare<[string, number, number], { identity: string; place: number }>(
        `SELECT identity, place FROM waiting_room_places
         WHERE event_id = ? AND place > ? AND left_at_ms IS NULL ORDER BY place LIMIT CAST(? AS INTEGER)`,
      )
      .all(eventId, room.admittedThrough, Number.isFinite(window.count) ? window.count : -1);
    if (next.length === 0) return 0;
    const admitStatement = db.prepare(
      `UPDATE waiting_room_places SET admit_at_ms = ?, session_ends_at_ms = ?
       WHERE event_id = ? AND identity = ? AND admit_at_ms IS NULL`,
    );
    next.forEach((entry, i) => {
      // Rounded up: a buyer is never let in before the rate allows.
      const admitAtMs = Math.ceil(window.startMs + i * window.intervalMs);
      admitStatement.run(admitAtMs, admitAtMs + room.sessionSeconds * 1000, eventId, entry.identity);
    });
    const nextSlotMs = nextSlotAfter(room, window, next.length);
    db.prepare("UPDATE waiting_rooms SET admitted_through = ?, next_slot_ms = ? WHERE event_id = ?").run(
      Number(next.at(-1)!.place),
      nextSlotMs,
      eventId,
    );
    return next.length;
  }

  async figures(): Promise<RoomFigures[]> {
    return this.#run((db) => {
      const nowMs = Date.now();
      return db
        .prepare<[number, number], RoomFigures>(
          `SELECT r.event_id AS eventId,
             (SELECT count(*) FROM waiting_room_places p
               WHERE p.event_id = r.event_id AND p.admit_at_ms IS NULL AND p.left_at_ms IS NULL) AS waiting,
             (SELECT count(*) FROM waiting_room_places p
               WHERE p.event_id = r.event_id AND p.session_ends_at_ms > ?) AS active,
             (SELECT count(*) FROM waiting_room_places p
               WHERE p.event_id = r.event_id AND p.admit_at_ms IS NOT NULL) AS admitted,
             (SELECT count(*) FROM waiting_room_places p
               WHERE p.event_id = r.event_id AND p.session_ends_at_ms <= ? AND p.collected_at_ms IS NULL
                 AND p.admit_at_ms IS NOT NULL) AS abandoned
           FROM waiting_rooms r ORDER BY r.event_id`,
        )
        .all(nowMs, nowMs);
    }, "read waiting room figures");
  }

  async admissions(eventId: string): Promise<AdmissionRecord[]> {
    return this.#run(
      (db) =>
        db
          .prepare<
            [string],
            { identity: string; place: number; prequeue: number; joined_at_ms: number; admit_at_ms: number }
          >(
            `SELECT identity, place, prequeue, joined_at_ms, admit_at_ms FROM waiting_room_places
             WHERE event_id = ? AND admit_at_ms IS NOT NULL ORDER BY place`,
          )
          .all(eventId)
          .map((row) => ({
            identity: row.identity,
            place: row.place,
            preQueue: row.prequeue === 1,
            joinedAtMs: row.joined_at_ms,
            admitAtMs: row.admit_at_ms,
          })),
      "read admissions",
    );
  }
}
