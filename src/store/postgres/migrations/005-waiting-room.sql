-- The waiting room (src/store/waiting-room-store.ts), in the store's schema beside the inventory: every
-- instance on every host answers from the same queue, and a restart of all of them loses nobody's place.
-- Runs with search_path set to the store's schema, like 001.

CREATE TABLE waiting_rooms (
  event_id             text COLLATE "C" PRIMARY KEY REFERENCES events (id),
  generation           text NOT NULL,
  admission_rate       double precision CHECK (admission_rate IS NULL OR admission_rate > 0),
  max_active           integer CHECK (max_active IS NULL OR max_active >= 1),
  session_seconds      integer NOT NULL CHECK (session_seconds >= 1),
  opens_at_ms          bigint NOT NULL,
  prequeue_opens_at_ms bigint NOT NULL,
  drawn                boolean NOT NULL DEFAULT false,
  prequeue_count       integer NOT NULL DEFAULT 0 CHECK (prequeue_count >= 0),
  later_count          integer NOT NULL DEFAULT 0 CHECK (later_count >= 0),
  admitted_through     integer NOT NULL DEFAULT 0,
  -- The earliest instant (ms, the database's clock) the next buyer may be let in; only moves forward.
  next_slot_ms         double precision NOT NULL DEFAULT 0,
  CONSTRAINT waiting_rooms_limited CHECK (admission_rate IS NOT NULL OR max_active IS NOT NULL),
  CONSTRAINT waiting_rooms_prequeue_first CHECK (prequeue_opens_at_ms <= opens_at_ms),
  -- A pass never admits a place that does not exist.
  CONSTRAINT waiting_rooms_admitted_exist CHECK (admitted_through <= prequeue_count + later_count)
);

CREATE TABLE waiting_room_places (
  event_id           text COLLATE "C" NOT NULL REFERENCES waiting_rooms (event_id) ON DELETE CASCADE,
  identity           text NOT NULL,
  joined_at_ms       bigint NOT NULL,
  prequeue           integer NOT NULL CHECK (prequeue IN (0, 1)),
  -- Pre-queue only: a random rank from the CSPRNG, drawn at join; the draw orders the pre-queue by it.
  draw_rank          bigint,
  place              integer,
  admit_at_ms        bigint,
  session_ends_at_ms bigint,
  collected_at_ms    bigint,
  left_at_ms         bigint,
  PRIMARY KEY (event_id, identity),
  -- One buyer per place (deferred: the draw gives the pre-queue its places in one statement).
  CONSTRAINT waiting_room_places_one_per_place UNIQUE (event_id, place) DEFERRABLE INITIALLY IMMEDIATE
);
-- The active shoppers of a room (sessions not ended yet), for the cap.
CREATE INDEX waiting_room_places_by_session ON waiting_room_places (event_id, session_ends_at_ms);
