-- The waiting room (src/store/waiting-room-store.ts): one row per room, one row per buyer's place. It
-- lives in the catalog (catalog.db, or the one file of the single layout), beside the events, so that
-- every process on the host sees the same queue and a restart loses nobody's place.
CREATE TABLE waiting_rooms (
  event_id             TEXT PRIMARY KEY,
  generation           TEXT NOT NULL,
  admission_rate       REAL CHECK (admission_rate IS NULL OR admission_rate > 0),
  max_active           INTEGER CHECK (max_active IS NULL OR max_active >= 1),
  session_seconds      INTEGER NOT NULL CHECK (session_seconds >= 1),
  opens_at_ms          INTEGER NOT NULL,
  prequeue_opens_at_ms INTEGER NOT NULL CHECK (prequeue_opens_at_ms <= opens_at_ms),
  drawn                INTEGER NOT NULL DEFAULT 0 CHECK (drawn IN (0, 1)),
  prequeue_count       INTEGER NOT NULL DEFAULT 0 CHECK (prequeue_count >= 0),
  later_count          INTEGER NOT NULL DEFAULT 0 CHECK (later_count >= 0),
  -- admitted_through <= every place given: a pass never admits a place that does not exist.
  admitted_through     INTEGER NOT NULL DEFAULT 0 CHECK (admitted_through <= prequeue_count + later_count),
  -- The earliest instant the next buyer may be let in: only moves forward, by 1 / rate per admission.
  next_slot_ms         REAL NOT NULL DEFAULT 0,
  CHECK (admission_rate IS NOT NULL OR max_active IS NOT NULL)
) STRICT;

CREATE TABLE waiting_room_places (
  event_id           TEXT NOT NULL,
  identity           TEXT NOT NULL,
  joined_at_ms       INTEGER NOT NULL,
  prequeue           INTEGER NOT NULL CHECK (prequeue IN (0, 1)),
  -- Pre-queue only: a random rank from the CSPRNG, drawn at join; the draw orders the pre-queue by it.
  draw_rank          INTEGER,
  place              INTEGER,
  admit_at_ms        INTEGER,
  session_ends_at_ms INTEGER,
  collected_at_ms    INTEGER,
  left_at_ms         INTEGER,
  PRIMARY KEY (event_id, identity)
) STRICT;

-- One buyer per place; the admission pass walks it in order.
CREATE UNIQUE INDEX waiting_room_places_by_place ON waiting_room_places (event_id, place);
-- The active shoppers of a room (sessions not ended yet), for the cap.
CREATE INDEX waiting_room_places_by_session ON waiting_room_places (event_id, session_ends_at_ms);
