/**
 * The SQL of the PostgreSQL store, with table names qualified by the store's schema (so that no session
 * `search_path` is needed: PgBouncer in transaction mode would not keep one). Every value is a bound
 * parameter ($1 …), a batch's rows are arrays bound as parameters (unnest($3::text[], …)): no value is
 * ever written into the text of a statement. A statement with many parameters names them ($eventId),
 * numbered once when the statements are built (`named`), bound from an object (`bindNamed`).
 *
 * Isolation is READ COMMITTED. Each writing transaction first locks its event row (FOR NO KEY UPDATE), so
 * the writers of one event queue up instead of deadlocking; but the guarantees are the guarded statements
 * and constraints beside each write, which hold even for a writer that skipped the lock.
 */

// clock_ms: the database's clock, read by the statement (the sale window is judged by it, never by an
// instance's clock). A write reads it again after its lock (`clock`), in a statement of its own.
const EVENT_COLUMNS =
  "id, name, kind, capacity, sold, held, sections, max_per_order, max_per_customer, starts_at, created_at, " +
  "description, status, sales_start_at, sales_end_at, confirm_holds_while_paused, max_hold_lifetime_seconds, " +
  "currency, tiers, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS clock_ms";
const HOLD_COLUMNS =
  "id, event_id, customer_id, quantity, seats, status, expires_at, created_at, lines, total, currency";
const ORDER_COLUMNS =
  "id, event_id, customer_id, quantity, seats, status, created_at, cancelled_at, lines, total, currency, payment_reference";

/** Every statement of the store, for one schema (`s` is the schema name quoted as an identifier). */
export function buildStatements(s: string) {
  return {
    insertEvent: `
      INSERT INTO ${s}.events (id, name, kind, capacity, sections, max_per_order, max_per_customer,
                               starts_at, created_at, description, status, sales_start_at, sales_end_at,
                               confirm_holds_while_paused, max_hold_lifetime_seconds, currency, tiers)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
    // Params: $1 event id, $2 tier ids, $3 their quotas (null: only the capacity bounds it).
    insertTiers: `
      INSERT INTO ${s}.price_tiers (event_id, tier_id, quota)
      SELECT $1, tier_id, quota FROM unnest($2::text[], $3::integer[]) AS t (tier_id, quota)`,
    // Sold and held per tier, read after the event row is locked (a statement of its own, so it sees
    // every commit before the lock was granted).
    selectTiers: `SELECT tier_id, sold, held FROM ${s}.price_tiers WHERE event_id = $1`,
    clock: `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS clock_ms`,
    lockEventRow: `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE id = $1 FOR NO KEY UPDATE`,
    setStatus: `UPDATE ${s}.events SET status = $2 WHERE id = $1`,
    // Params: $1 id, $2 name, $3 description, $4 capacity, $5 max per order, $6 max per customer,
    // $7 sales start, $8 sales end, $9 confirm holds while paused, $10 max hold lifetime (s).
    // sold + held <= capacity: an edit never takes the capacity below what is taken (the CHECK agrees).
    setSettings: `
      UPDATE ${s}.events SET name = $2, description = $3, capacity = $4, max_per_order = $5,
        max_per_customer = $6, sales_start_at = $7, sales_end_at = $8, confirm_holds_while_paused = $9,
        max_hold_lifetime_seconds = $10
      WHERE id = $1 AND sold + held <= $4
      RETURNING id`,

    selectEvent: `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE id = $1`,

    listEvents: `
      SELECT ${EVENT_COLUMNS} FROM ${s}.events
      WHERE id > $1 ORDER BY id LIMIT $2`,

    selectSeatClaims: `SELECT seat_id, sold FROM ${s}.seat_claims WHERE event_id = $1`,

    selectOrder: `SELECT ${ORDER_COLUMNS} FROM ${s}.orders WHERE id = $1`,
    selectHold: `SELECT ${HOLD_COLUMNS} FROM ${s}.holds WHERE id = $1`,

    // A keyset page of an event's orders. Params: $1 event id, $2 cursor (the last id seen, '' for the
    // first page), $3 status or null, $4 customer id or null, $5 created at or after or null, $6 created
    // before or null, $7 limit. Rows: orders in byte order of id, over the index (event_id, id COLLATE "C").
    listOrders: `
      SELECT ${ORDER_COLUMNS} FROM ${s}.orders
      WHERE event_id = $1 AND id COLLATE "C" > $2
        AND ($3::text IS NULL OR status = $3)
        AND ($4::text IS NULL OR customer_id = $4)
        AND ($5::timestamptz IS NULL OR created_at >= $5)
        AND ($6::timestamptz IS NULL OR created_at < $6)
      ORDER BY id COLLATE "C" LIMIT $7`,
    eventExists: `SELECT 1 AS found FROM ${s}.events WHERE id = $1`,

    // Fencing: the highest token applied per lock key only grows. The upsert locks the key's row, so two
    // writers with different tokens are ordered, and the older one finds no row to update. A key with no
    // row (new, or pruned) must reach the floor: the largest fence pruned (row '', see pruneFences). No
    // row is written for an event that does not exist ($3), so made-up ids leave nothing behind.
    applyFence: `
      INSERT INTO ${s}.fences AS f (lock_key, fence)
      SELECT $1::text, $2::bigint
      WHERE $2::bigint >= COALESCE((SELECT fence FROM ${s}.fences WHERE lock_key = ''), 0)
        AND EXISTS (SELECT 1 FROM ${s}.events WHERE id = $3)
      ON CONFLICT (lock_key) DO UPDATE SET fence = EXCLUDED.fence
      WHERE f.fence <= EXCLUDED.fence
      RETURNING fence`,
    // The key's highest fence, or the floor when it has no row (a row is never below the floor).
    selectFence: `SELECT max(fence) AS fence FROM ${s}.fences WHERE lock_key IN ($1, '')`,
    // Forgets the keys whose highest fence was issued before $1 (fences are at least their issuer's wall
    // clock in µs), and raises the floor to the largest one forgotten: a stale holder of a forgotten key
    // is still refused, and a fresh token (issued after $1) is above the floor.
    pruneFences: `
      WITH gone AS (
        DELETE FROM ${s}.fences WHERE lock_key <> '' AND fence < $1 RETURNING fence
      ), floor AS (
        INSERT INTO ${s}.fences AS f (lock_key, fence)
        SELECT '', max(fence) FROM gone HAVING count(*) > 0
        ON CONFLICT (lock_key) DO UPDATE SET fence = EXCLUDED.fence WHERE f.fence < EXCLUDED.fence
      )
      SELECT count(*)::int AS pruned FROM gone`,

    // The first statement of every write: the event row, locked. Every writer of an event takes this lock
    // first, so writers of one event queue up instead of deadlocking, and what the batch reads after it
    // (answers, customer counts, seat claims) cannot change under it.
    // `has_due`: whether overdue holds wait for expiry (rarely; the expiry statement is only run then).
    lockEvent: `
      SELECT ${EVENT_COLUMNS},
             EXISTS (SELECT 1 FROM ${s}.holds h
                     WHERE h.event_id = e.id AND h.status = 'active' AND h.expires_at <= $2) AS has_due
      FROM ${s}.events e WHERE e.id = $1
      FOR NO KEY UPDATE OF e`,

    // Events with overdue holds that no other transaction has locked: a sweeper skips events that are
    // busy selling (their own execute() expires their holds) and events another sweeper has taken.
    lockEventsWithDueHolds: `
      SELECT id FROM ${s}.events
      WHERE id IN (SELECT event_id FROM ${s}.holds WHERE status = 'active' AND expires_at <= $1)
      ORDER BY id
      LIMIT $2
      FOR NO KEY UPDATE SKIP LOCKED`,

    // Expires overdue holds of the given (locked) events and gives their tickets back, exactly once: the
    // status change from 'active' is the guarded write every give-back hangs on, and SKIP LOCKED lets
    // concurrent sweepers pass each other's rows instead of queueing.
    expireHolds: `
      WITH due AS (
        SELECT id FROM ${s}.holds
        WHERE event_id = ANY($1::text[]) AND status = 'active' AND expires_at <= $2
        ORDER BY expires_at LIMIT $3
        FOR UPDATE SKIP LOCKED
      ), expired AS (
        UPDATE ${s}.holds h SET status = 'expired'
        FROM due WHERE h.id = due.id AND h.status = 'active'
        RETURNING h.id, h.event_id, h.customer_id, h.quantity, h.lines, h.seats, h.expires_at, h.created_at,
                  h.total, h.currency
      ), tiers AS (
        -- held >= 0 per tier is a CHECK too; a hold made before prices is all in the default tier
        UPDATE ${s}.price_tiers t SET held = t.held - x.quantity
        FROM (SELECT event_id, tier_id, sum(quantity)::int AS quantity
              FROM (SELECT expired.event_id,
                           coalesce(line->>'id', 'default') AS tier_id,
                           coalesce((line->>'quantity')::int, expired.quantity) AS quantity
                    FROM expired
                    LEFT JOIN LATERAL jsonb_array_elements(expired.lines) AS line ON true) l
              GROUP BY event_id, tier_id) x
        WHERE t.event_id = x.event_id AND t.tier_id = x.tier_id
      ), customers AS (
        UPDATE ${s}.customer_tickets c SET tickets = c.tickets - x.quantity
        FROM (SELECT event_id, customer_id, sum(quantity)::int AS quantity
              FROM expired GROUP BY event_id, customer_id) x
        WHERE c.event_id = x.event_id AND c.customer_id = x.customer_id
      ), seats AS (
        DELETE FROM ${s}.seat_claims sc USING expired
        WHERE sc.event_id = expired.event_id AND sc.owner_id = expired.id
      ), events AS (
        -- held >= 0 is a CHECK: a hold given back twice would fail here, not go negative
        UPDATE ${s}.events e SET held = e.held - x.quantity
        FROM (SELECT event_id, sum(quantity)::int AS quantity FROM expired GROUP BY event_id) x
        WHERE e.id = x.event_id
      )
      SELECT count(*)::int AS holds, coalesce(sum(quantity), 0)::int AS tickets,
             -- the expired holds, for their hold.expired messages (expires_at in ms since the epoch)
             coalesce(json_agg(json_build_object(
               'id', id, 'eventId', event_id, 'customerId', customer_id, 'quantity', quantity, 'seats', seats,
               'expiresAtMs', (extract(epoch FROM expires_at) * 1000)::bigint,
               'createdAtMs', (extract(epoch FROM coalesce(created_at, expires_at)) * 1000)::bigint,
               'lines', lines, 'total', total, 'currency', currency)), '[]'::json) AS expired
      FROM expired`,

    // Webhook outbox rows, in the order given, in the transaction of the change they report.
    insertOutbox: `
      INSERT INTO ${s}.outbox (id, event_id, type, payload, created_at)
      SELECT id, event_id, type, payload, $5
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS o (id, event_id, type, payload, n)
      ORDER BY n`,

    // Read after the event row is locked, so that a twin request that committed first is seen.
    selectIdempotency: `
      SELECT key, fingerprint, outcome FROM ${s}.idempotency WHERE event_id = $1 AND key = ANY($2::text[])`,
    // At most $2 keys a call, so that pruning a large backlog never runs into the statement timeout.
    pruneIdempotency: `
      DELETE FROM ${s}.idempotency
      WHERE (event_id, key) IN (SELECT event_id, key FROM ${s}.idempotency WHERE created_at < $1 LIMIT $2)
      RETURNING key`,

    // What a batch's purchases and holds are decided on, read after the event row is locked.
    selectCustomers: `
      SELECT customer_id, tickets FROM ${s}.customer_tickets
      WHERE event_id = $1 AND customer_id = ANY($2::text[])`,
    selectSeatOwners: `
      SELECT seat_id, owner_id FROM ${s}.seat_claims WHERE event_id = $1 AND seat_id = ANY($2::text[])`,

    // The holds and orders a batch's commands name ($1, ids), read with their row locks after the event
    // row's, in one statement each whatever the batch's size.
    lockHolds: `
      SELECT ${HOLD_COLUMNS} FROM ${s}.holds WHERE id = ANY($1::text[]) AND event_id = $2 ORDER BY id FOR UPDATE`,
    lockOrders: `
      SELECT ${ORDER_COLUMNS} FROM ${s}.orders WHERE id = ANY($1::text[]) AND event_id = $2 ORDER BY id
      FOR UPDATE`,

    // The writes of a batch's confirm, extend, release and cancel commands: one statement per kind
    // whatever their number, each row's change guarded on the status it leaves (a hold is confirmed,
    // ended or extended only while 'active', an order cancelled only while 'confirmed'), so each happens
    // once. Each answers one row, `written`, and fails (batch_guard, migration 006) unless it wrote all
    // of its rows (the last parameter says how many): a row that changed under its lock means someone
    // wrote to this event without it, and nothing may commit; so COMMIT may be sent with them. They run
    // before closeBatch, in this order: extend, confirm, end, cancel (a confirmed order may be cancelled
    // in the same batch).

    // Params: $1 hold ids (distinct), $2 their new expiry, $3 event id, $4 how many.
    extendHolds: `
      WITH extended AS (
        UPDATE ${s}.holds h SET expires_at = x.expires_at
        FROM unnest($1::text[], $2::timestamptz[]) AS x (id, expires_at)
        WHERE h.id = x.id AND h.event_id = $3 AND h.status = 'active'
        RETURNING h.id
      )
      SELECT count(*)::int AS written,
             ${s}.batch_guard($3, CASE WHEN count(*) <> $4 THEN 'an extended hold changed under its lock' END)
      FROM extended`,

    // Hold -> order. Params: $1 hold ids, $2 the new orders' ids, $3 payment references, $4 event id,
    // $5 now, $6 how many. The seats move to the order.
    confirmHolds: `
      WITH c AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS c (hold_id, order_id, payment_reference)
      ), hold AS (
        UPDATE ${s}.holds h SET status = 'confirmed'
        FROM c WHERE h.id = c.hold_id AND h.event_id = $4 AND h.status = 'active'
        RETURNING h.id, c.order_id, c.payment_reference, h.customer_id, h.quantity, h.seats, h.lines,
                  h.total, h.currency
      ), seats AS (
        UPDATE ${s}.seat_claims sc SET owner_id = hold.order_id, sold = true
        FROM hold WHERE sc.event_id = $4 AND sc.owner_id = hold.id
      ), confirmed AS (
        INSERT INTO ${s}.orders (id, event_id, customer_id, quantity, seats, status, created_at, lines, total,
                                 currency, payment_reference)
        SELECT order_id, $4, customer_id, quantity, seats, 'confirmed', $5, lines, total, currency,
               payment_reference
        FROM hold
        RETURNING id
      )
      SELECT count(*)::int AS written,
             ${s}.batch_guard($4, CASE WHEN count(*) <> $6 THEN 'a confirmed hold changed under its lock' END)
      FROM confirmed`,

    // Ends active holds (each 'released' or 'expired') and gives their tickets back: the customers'
    // counts (summed per customer: one update per row) and the seats. Every give-back hangs on the
    // guarded status change, so it happens exactly once. Params: $1 hold ids, $2 statuses, $3 event id,
    // $4 how many.
    endHolds: `
      WITH e AS (
        SELECT * FROM unnest($1::text[], $2::text[]) AS e (id, status)
      ), hold AS (
        UPDATE ${s}.holds h SET status = e.status
        FROM e WHERE h.id = e.id AND h.event_id = $3 AND h.status = 'active'
        RETURNING h.id, h.customer_id, h.quantity
      ), per_customer AS (
        SELECT customer_id, sum(quantity)::integer AS quantity FROM hold GROUP BY customer_id
      ), customer AS (
        UPDATE ${s}.customer_tickets c SET tickets = c.tickets - p.quantity
        FROM per_customer p WHERE c.event_id = $3 AND c.customer_id = p.customer_id
      ), seats AS (
        DELETE FROM ${s}.seat_claims WHERE event_id = $3 AND owner_id IN (SELECT id FROM hold)
      )
      SELECT count(*)::int AS written,
             ${s}.batch_guard($3, CASE WHEN count(*) <> $4 THEN 'an ended hold changed under its lock' END)
      FROM hold`,

    // Cancels confirmed orders and gives their tickets back, once each: guarded on status = 'confirmed'.
    // Params: $1 order ids, $2 event id, $3 now, $4 how many.
    cancelOrders: `
      WITH cancelled AS (
        UPDATE ${s}.orders SET status = 'cancelled', cancelled_at = $3
        WHERE id = ANY($1::text[]) AND event_id = $2 AND status = 'confirmed'
        RETURNING id, customer_id, quantity
      ), per_customer AS (
        SELECT customer_id, sum(quantity)::integer AS quantity FROM cancelled GROUP BY customer_id
      ), customer AS (
        UPDATE ${s}.customer_tickets c SET tickets = c.tickets - p.quantity
        FROM per_customer p WHERE c.event_id = $2 AND c.customer_id = p.customer_id
      ), seats AS (
        DELETE FROM ${s}.seat_claims WHERE event_id = $2 AND owner_id IN (SELECT id FROM cancelled)
      )
      SELECT count(*)::int AS written,
             ${s}.batch_guard($2, CASE WHEN count(*) <> $4 THEN 'a cancelled order changed under its lock' END)
      FROM cancelled`,

    // The end of one or more events' batches, in one statement: their new orders and holds, their seats,
    // the customers' new counts, the first answers to their idempotency keys, their webhook messages and
    // the events' counters, every row with its event's id, so one statement closes every event of a
    // multi-event commit (executeMany) as it closes one. The statement is the function close_batch
    // (migration 006), whose plan the server keeps: every write is guarded on its own there (primary keys,
    // maxPerCustomer on the locked row, capacity and quotas in the WHERE and in CHECKs), and an event
    // that did not get all of its rows fails it (batch_guard: check_violation, the event's id as the
    // detail), so no row count need be checked before COMMIT. Its parameters are named (CloseBatchParams,
    // in the function's order); `bindNamed` puts them in the order of their $n.
    closeBatch: named<CloseBatchParams>(`
      SELECT ${s}.close_batch(
        $saleEventIds, $saleIds, $saleCustomerIds, $saleQuantities, $saleSeats, $saleKinds, $saleAts,
        $saleLines, $saleTotals, $saleCurrencies, $now, $tierEventIds, $tierIds, $tierSoldDeltas,
        $tierHeldDeltas, $claimEventIds, $claimSeatIds, $claimOwnerIds, $claimSold, $takenEventIds,
        $takenCustomerIds, $takenTickets, $answerEventIds, $answerKeys, $answerFingerprints, $answerOutcomes,
        $outboxIds, $outboxEventIds, $outboxTypes, $outboxPayloads, $counterEventIds, $soldDeltas, $heldDeltas,
        $expectedCustomers, $expectedTiers)`),

    // lockEvent for several events at once (executeMany), locked in id order.
    lockEvents: `
      SELECT ${EVENT_COLUMNS},
             EXISTS (SELECT 1 FROM ${s}.holds h
                     WHERE h.event_id = e.id AND h.status = 'active' AND h.expires_at <= $2) AS has_due
      FROM ${s}.events e WHERE e.id = ANY($1::text[])
      ORDER BY e.id
      FOR NO KEY UPDATE OF e`,
    // The reads of the batches of several events, and the clock, in one statement, taken after the event
    // rows' locks: the function deciding_of (migration 006, whose plan the server keeps), each read's rows
    // as a JSON array with the columns the one-event reads answer. Params: $1/$2 the answers' events and
    // keys, $3/$4 the customers' events and ids, $5/$6 the seats' events and ids, $7 the events.
    decidingOf: `SELECT * FROM ${s}.deciding_of($1, $2, $3, $4, $5, $6, $7)`,
    // The named holds and orders of several events: $1 ids, $2 the events.
    lockHoldsOf: `
      SELECT ${HOLD_COLUMNS} FROM ${s}.holds WHERE id = ANY($1::text[]) AND event_id = ANY($2::text[])
      ORDER BY id FOR UPDATE`,
    lockOrdersOf: `
      SELECT ${ORDER_COLUMNS} FROM ${s}.orders WHERE id = ANY($1::text[]) AND event_id = ANY($2::text[])
      ORDER BY id FOR UPDATE`,
    // Several lock keys' fences at once, as applyFence does one's: $1 each part's lock key, $2 its fence,
    // $3 its event (a key's fence is written only when one of its events exists). A key that several
    // parts share gets their highest fence (a part with a lower one is stale); the keys' rows are locked
    // in key order. Rows: each key applied, with its fence.
    applyFences: `
      INSERT INTO ${s}.fences AS f (lock_key, fence)
      SELECT w.lock_key, max(w.fence)
      FROM unnest($1::text[], $2::bigint[], $3::text[]) AS w (lock_key, fence, event_id)
      WHERE EXISTS (SELECT 1 FROM ${s}.events WHERE id = w.event_id)
      GROUP BY w.lock_key
      HAVING max(w.fence) >= COALESCE((SELECT fence FROM ${s}.fences WHERE lock_key = ''), 0)
      ORDER BY w.lock_key
      ON CONFLICT (lock_key) DO UPDATE SET fence = EXCLUDED.fence
      WHERE f.fence <= EXCLUDED.fence
      RETURNING lock_key, fence`,
  } as const;
}

export type Statements = ReturnType<typeof buildStatements>;

/**
 * What closeBatch writes, for one event or several (every row with its event's id): the new orders and
 * holds (`sale…`, one entry each, `saleSeats` a JSON array or null, `saleKinds` "order" or "hold",
 * `saleAts` the order's creation or the hold's expiry), the seats they claim (`claim…`), the tickets each
 * customer takes (`taken…`, at most the event's maxPerCustomer in all), the first answers to keep
 * (`answer…`, `answerOutcomes` as JSON), the webhook messages (`outbox…`, payloads as JSON text), and
 * what each event's counters move by (`counter…`).
 */
export interface CloseBatchParams {
  now: Date;
  saleEventIds: string[];
  saleIds: string[];
  saleCustomerIds: string[];
  saleQuantities: number[];
  saleSeats: (string | null)[];
  saleKinds: ("order" | "hold")[];
  saleAts: Date[];
  /** JSON [Line] of each new order or hold, its total (minor units) and its currency. */
  saleLines: string[];
  saleTotals: number[];
  saleCurrencies: string[];
  /** How far each tier's sold and held move (checked against its quota). */
  tierEventIds: string[];
  tierIds: string[];
  tierSoldDeltas: number[];
  tierHeldDeltas: number[];
  claimEventIds: string[];
  claimSeatIds: string[];
  claimOwnerIds: string[];
  claimSold: boolean[];
  takenEventIds: string[];
  takenCustomerIds: string[];
  takenTickets: number[];
  answerEventIds: string[];
  answerKeys: string[];
  answerFingerprints: string[];
  answerOutcomes: string[];
  outboxIds: string[];
  outboxEventIds: string[];
  outboxTypes: string[];
  outboxPayloads: string[];
  /** What each event's counters move by. */
  counterEventIds: string[];
  soldDeltas: number[];
  heldDeltas: number[];
  /** Per counter event: how many customers' and tiers' rows it must get back (else the statement fails). */
  expectedCustomers: number[];
  expectedTiers: number[];
}

/** A statement whose parameters are named (`$eventId`) in its source and numbered ($1 …) in `text`. */
export interface NamedStatement<P> {
  text: string;
  /** The parameter of each $n, in order: `names[0]` is $1. */
  names: readonly (keyof P & string)[];
}

/**
 * Numbers the named parameters of `source` ($name, a letter after the $) in the order they first
 * appear; every use of one name becomes the same $n. Runs once, when the statements are built.
 */
export function named<P>(source: string): NamedStatement<P> {
  const names: (keyof P & string)[] = [];
  const text = source.replace(/\$([A-Za-z][A-Za-z0-9]*)/g, (_, name: string) => {
    let index = names.indexOf(name as keyof P & string);
    if (index < 0) index = names.push(name as keyof P & string) - 1;
    return `$${index + 1}`;
  });
  return { text, names };
}

/** The values of a named statement, in the order of its $n. */
export function bindNamed<P>(statement: NamedStatement<P>, params: P): unknown[] {
  return statement.names.map((name) => params[name]);
}
