/**
 * The waiting room's queue, kept where the inventory is kept (the SQLite catalog on one host, PostgreSQL
 * when scaled out), so that every instance answers the same and a restart of every instance loses nobody's
 * place. It speaks in rooms, places and admissions, never in connections or transactions.
 *
 * The order of admission: buyers who joined before the room opened (the pre-queue) each get a random
 * rank from the OS's CSPRNG when they join; at the opening, the first admission pass "draws" them: places
 * 1…P in rank order, a uniformly random permutation of the pre-queue. Later arrivals get the next place
 * when they join (P+1, P+2, … in the order their joins commit), so they queue first come, first served
 * behind the pre-queue.
 *
 * The rate: admission passes run in every instance, but each is one transaction on the room's row, which
 * carries `nextSlotMs`: the earliest instant at which the next buyer may be let in. A pass gives the next
 * buyers admission times `max(nextSlotMs, now) + i / rate` up to a short look-ahead and moves `nextSlotMs`
 * past them; however many instances run passes, however late, no two buyers are let in less than 1 / rate
 * apart. A buyer is admitted at his admission time, not before: that is when the poll answers with the
 * access token.
 */

/** A room's settings, as the admin sets them (times already resolved, see waiting-room/opening.ts). */
export interface RoomSettings {
  /** Buyers let in per second; null: only the cap on active shoppers limits admission. */
  admissionRatePerSecond: number | null;
  /** Admitted buyers whose shopping session has not ended, at most; null: no cap. */
  maxActiveShoppers: number | null;
  /** How long an admitted buyer may shop (the access token's lifetime). */
  sessionSeconds: number;
  /** When admission starts; buyers who joined before it are the pre-queue. */
  opensAtMs: number;
  /** When buyers may start joining (the pre-queue opens), at or before `opensAtMs`. */
  preQueueOpensAtMs: number;
}

/** A room with its counters, as the store keeps it. */
export interface Room extends RoomSettings {
  eventId: string;
  /** Random per room: a room deleted and set up again issues tokens that the old ones cannot pass for. */
  generation: string;
  /** The pre-queue has been drawn (places given in random order): the room is open. */
  drawn: boolean;
  /** Buyers who joined before the opening. */
  preQueueCount: number;
  /** Buyers who joined after the opening (and buyers who joined again after leaving). */
  laterCount: number;
  /** Every place up to this one has been given an admission time (or was left). */
  admittedThrough: number;
  /** The earliest instant (ms) at which the next buyer may be let in. */
  nextSlotMs: number;
}

/** One buyer's place in a room. */
export interface Place {
  identity: string;
  /** 1-based admission order; null in the pre-queue before the draw. */
  place: number | null;
  /** Joined before the opening. */
  preQueue: boolean;
  joinedAtMs: number;
  /** When this buyer is (or was) let in; null while waiting. */
  admitAtMs: number | null;
  /** When the shopping session ends; null while waiting. */
  sessionEndsAtMs: number | null;
  /** The buyer left the room (DELETE …/queue): the session, if any, is over. */
  leftAtMs: number | null;
  /** When the buyer first collected the access token; null if never (abandonment, in the figures). */
  collectedAtMs: number | null;
}

/** A buyer's place read together with its room and the store's clock, in one read. */
export interface PlaceView {
  room: Room;
  place: Place | null;
  /** The store's clock (PostgreSQL's, so that every instance agrees; the host's for SQLite). */
  nowMs: number;
}

export type JoinResult =
  | { ok: true; place: Place; room: Room; created: boolean; nowMs: number }
  | { ok: false; reason: "no_room" }
  | { ok: false; reason: "not_open"; preQueueOpensAtMs: number };

export type ConfigureResult =
  { ok: true; room: Room; created: boolean } | { ok: false; reason: "already_open"; opensAtMs: number };

/** What one admission pass did in one room. */
export interface Admission {
  eventId: string;
  /** Buyers given an admission time by this pass. */
  admitted: number;
}

/** A room's figures for /metrics. */
export interface RoomFigures {
  eventId: string;
  /** Buyers with no admission time yet. */
  waiting: number;
  /** Buyers admitted whose session has not ended (or will be admitted within the look-ahead). */
  active: number;
  /** Buyers admitted in all. */
  admitted: number;
  /** Buyers whose session ended without ever collecting their access token. */
  abandoned: number;
}

/** A buyer who was handed the access token, and when. */
export interface CollectedMark {
  eventId: string;
  identity: string;
  atMs: number;
}

/** One admitted place, for the admin's record of the admissions (and the tests). */
export interface AdmissionRecord {
  identity: string;
  place: number;
  preQueue: boolean;
  joinedAtMs: number;
  admitAtMs: number;
}

export interface WaitingRoomStore {
  /**
   * Creates the room, or changes its settings. The opening (`opensAtMs`) cannot be moved once the room
   * has opened (`already_open`). A room created anew gets a new generation.
   */
  configure(eventId: string, settings: RoomSettings): Promise<ConfigureResult>;
  /** The room, or null. */
  room(eventId: string): Promise<Room | null>;
  /** Removes the room and every place in it; true when there was one. */
  remove(eventId: string): Promise<boolean>;
  /**
   * Gives each identity a place, or returns the one it has (one place per identity), all in one
   * transaction with one commit (joins of a surge are group-committed, as sales are); one result per
   * identity, in order. Before the opening a place is in the pre-queue, with a random rank drawn from
   * `randomRank`; after, at the back, in the order given. A buyer who left and joins again goes to the back.
   */
  join(eventId: string, identities: readonly string[], randomRank: () => number): Promise<JoinResult[]>;
  /** The buyer's place with its room and the store's clock, in one indexed read (no write, no lock). */
  place(eventId: string, identity: string): Promise<PlaceView | null>;
  /**
   * Notes that buyers collected their access tokens (the first time counts; it is what tells abandonment
   * apart), all in one transaction (waiting-room/collection-log.ts gathers them).
   */
  markCollected(marks: readonly CollectedMark[]): Promise<void>;
  /** The buyer leaves: out of the queue, or the shopping session ends now. True when there was a place. */
  leave(eventId: string, identity: string): Promise<boolean>;
  /**
   * One admission pass over every room that is open (drawing a pre-queue first when the opening has
   * come): admission times are given up to `lookAheadMs` ahead, never closer together than the rate
   * allows, never beyond the cap on active shoppers. Safe to run in every instance at once.
   */
  admit(lookAheadMs: number): Promise<Admission[]>;
  /** The figures of every room. */
  figures(): Promise<RoomFigures[]>;
  /** Every place given an admission time, in place order. */
  admissions(eventId: string): Promise<AdmissionRecord[]>;
}
