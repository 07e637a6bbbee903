-- The guard of closeBatch (postgres-statements.ts), raised inside the statement itself: when one of its
-- guarded writes finds no row to write for an event (someone wrote to that event without its row lock),
-- the statement fails, so the transaction's COMMIT can travel in the same round trip as its writes.
-- Raises check_violation with the constraint name 'batch_guard' and the event's id as the detail (the
-- store tells by them which event of a multi-event commit failed); returns false otherwise.
-- Runs with search_path set to the store's schema, like 001. Only adds a function: a build before this
-- one does not call it and keeps working on a schema that has it.

CREATE FUNCTION batch_guard(event_id text, problem text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION '%', problem USING ERRCODE = 'check_violation', CONSTRAINT = 'batch_guard', DETAIL = event_id;
  END IF;
  RETURN false;
END
$$;
