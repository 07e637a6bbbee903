/**
 * What a load client records of each request it made: the log the verifier reads beside the HTTP API.
 * A client writes one record per attempt (a retry with the same key is a record of its own).
 */

/** The five writes a buyer makes. */
export type ClientRecordKind = "purchase" | "hold" | "confirm" | "release" | "cancel";

export interface ClientRecord {
  kind: ClientRecordKind;
  /** The event the request touches (for a confirm, release or cancel: the hold's or order's event). */
  eventId: string;
  /** The Idempotency-Key sent, or null when none was. */
  idempotencyKey: string | null;
  /** What was sent. `body` is the JSON value sent, or null for no body. */
  method: string;
  path: string;
  body: unknown;
  /** Headers to send again when the request is replayed (for example a buyer's credentials). */
  headers?: Readonly<Record<string, string>>;
  /** The answer's status; null when none came (a network error or a timeout). */
  status: number | null;
  /** The parsed JSON body of the answer, or null. */
  response: unknown;
  startedAtMs: number;
  endedAtMs: number;
  /** The answer's X-Served-By, or null. */
  instance: string | null;
}

/** A record whose outcome the client does not know: no answer, or a 5xx. */
export function isInDoubt(record: Pick<ClientRecord, "status">): boolean {
  return record.status === null || record.status >= 500;
}
