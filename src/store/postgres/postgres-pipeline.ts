/**
 * Several parameterised statements in one round trip: the extended query protocol's messages (Parse,
 * Bind, Describe, Execute) for each statement, then a single Sync. The server runs them in order, each
 * with its own snapshot, and stops at the first error (it skips every message up to the Sync), exactly
 * as a multi-statement simple query would; but every value travels as a bound parameter, never as SQL
 * text, so no user input can change a statement or break the message that carries it.
 *
 * To PgBouncer (transaction mode) and to pg's client this is one query: one Sync, one ReadyForQuery.
 * pg's own pipeline mode would send a Sync per statement and needs the whole pool switched to it.
 *
 * It is a pg "submittable" (as pg-cursor is): pg's Client hands it the connection and the server's
 * messages. What it uses of pg beyond the typed API (Result, utils.prepareValue, the connection's
 * message writers) is declared in PgInternals below.
 */
import pg from "pg";

/** One statement and its values ($1, $2, … in order). */
export interface PipelineStatement {
  text: string;
  values?: readonly unknown[];
}

/** The parts of pg this file uses that @types/pg does not declare. */
interface PgInternals {
  Result: new (rowMode?: string, types?: unknown) => PgResult;
  utils: { prepareValue(value: unknown): unknown };
}

interface PgResult {
  rows: unknown[];
  /** The client's type parsers; pg's Client fills them in on a submittable's `_result`. */
  _types?: unknown;
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): unknown;
  addRow(row: unknown): void;
}

/** The message writers of pg's Connection that a submittable drives. */
interface PgConnection {
  stream: { cork?(): void; uncork?(): void };
  parse(query: { text: string; name?: string; types?: number[] }): void;
  bind(config: { portal?: string; statement?: string; values?: unknown[]; binary?: boolean }): void;
  describe(message: { type: "P" | "S"; name?: string }): void;
  execute(config: { portal?: string; rows?: number }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

const internals = pg as unknown as PgInternals;

/** The index of the statement whose error failed a pipeline, for the errors runPipeline rejects with. */
const failedStatements = new WeakMap<object, number>();

/**
 * Which statement of its pipeline `error` came from (0 is the first), or null when the error did not
 * come from one statement (the connection failed, a value could not be converted, a row could not be
 * parsed). A caller that sent several units of work in one pipeline tells by it which unit failed.
 */
export function failedStatementOf(error: unknown): number | null {
  return typeof error === "object" && error !== null ? (failedStatements.get(error) ?? null) : null;
}

/**
 * Runs `statements` in one round trip on `client` and resolves with the rows of each, in order; rejects
 * with the first error (a pg DatabaseError with its SQLSTATE, or the connection's error). Values go
 * through pg's own conversion (strings, numbers, Dates, arrays, JSON) before anything is written, so
 * a value pg cannot convert fails here with nothing sent.
 */
export function runPipeline(
  client: pg.ClientBase,
  statements: readonly PipelineStatement[],
): Promise<unknown[][]> {
  if (statements.length === 0) return Promise.resolve([]);
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline(statements);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => {
    pipeline.callback = (error, rows) => (error ? reject(error) : resolve(rows ?? []));
    // A submittable is queued like any query (and gets the pool's query_timeout the same way).
    client.query(pipeline as unknown as pg.QueryConfig);
  });
}

/** Characters an array element must escape (with a backslash) inside its double quotes. */
const ARRAY_ESCAPE = /["\\]/g;
const ARRAY_NEEDS_ESCAPE = /["\\]/;

/**
 * The array literal pg's prepareValue would write for an array of strings, numbers, booleans and nulls
 * (every element quoted, `"` and `\` escaped, NULL unquoted), in one pass and one regular expression
 * per element only when it needs escaping (pg runs two replacements on every element: a batch's
 * arrays of ids and JSON texts made that a tenth of the instance's CPU with 50 events); null for any
 * other array (dates, nested arrays, buffers, objects), which pg converts itself.
 */
export function flatArrayLiteral(values: readonly unknown[]): string | null {
  let literal = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) literal += ",";
    if (value === null || value === undefined) {
      literal += "NULL";
      continue;
    }
    let text: string;
    if (typeof value === "string") text = value;
    else if (typeof value === "number" || typeof value === "boolean") text = String(value);
    else return null;
    literal += `"${ARRAY_NEEDS_ESCAPE.test(text) ? text.replace(ARRAY_ESCAPE, "\\$&") : text}"`;
  }
  return `${literal}}`;
}

class Pipeline {
  /** Set before submission; pg's Client wraps it with its read timeout. */
  callback: ((error: Error | null, rows?: unknown[][]) => void) | undefined;
  readonly #statements: { text: string; values: (string | Buffer | null)[] }[];
  /** pg's Client gives this its own type parsers (as to any query), which every result here then uses. */
  readonly _result: PgResult = new internals.Result();
  readonly #results: PgResult[] = [];
  #current: PgResult | null = null;
  #rowError: unknown = null;
  #done = false;

  constructor(statements: readonly PipelineStatement[]) {
    this.#statements = statements.map((statement) => ({
      text: statement.text,
      values: (statement.values ?? []).map(
        (value) =>
          (Array.isArray(value) ? flatArrayLiteral(value) : null) ??
          (internals.utils.prepareValue(value) as string | Buffer | null),
      ),
    }));
  }

  submit(connection: PgConnection): Error | null {
    connection.stream.cork?.();
    try {
      for (const statement of this.#statements) {
        connection.parse({ text: statement.text });
        connection.bind({ values: statement.values });
        connection.describe({ type: "P" });
        connection.execute({ rows: 0 });
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  #result(): PgResult {
    this.#current ??= new internals.Result(undefined, this._result._types);
    return this.#current;
  }

  handleRowDescription(message: { fields: unknown[] }): void {
    this.#result().addFields(message.fields);
  }

  handleDataRow(message: { fields: unknown[] }): void {
    if (this.#rowError !== null) return;
    try {
      const result = this.#result();
      result.addRow(result.parseRow(message.fields));
    } catch (error) {
      this.#rowError = error;
    }
  }

  handleCommandComplete(): void {
    this.#results.push(this.#result());
    this.#current = null;
  }

  handleEmptyQuery(): void {
    this.handleCommandComplete();
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail("no COPY here");
  }

  handleCopyData(): void {}

  handleError(error: Error): void {
    // The server stops at the first error: every statement before it completed.
    if (!this.#done && error instanceof pg.DatabaseError) failedStatements.set(error, this.#results.length);
    this.#finish(error);
  }

  handleReadyForQuery(): void {
    if (this.#rowError !== null) {
      this.#finish(this.#rowError instanceof Error ? this.#rowError : new Error(String(this.#rowError)));
      return;
    }
    this.#finish(null);
  }

  #finish(error: Error | null): void {
    if (this.#done) return;
    this.#done = true;
    this.callback?.(error, error ? undefined : this.#results.map((result) => result.rows));
  }
}
