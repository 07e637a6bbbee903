/**
 * The waiting room's signed passes: the queue token (who holds a place, in which room) and the access
 * token (this buyer may buy for this event until the session ends). Both are HMAC-SHA256 over the
 * payload with a key derived from the instances' shared signing secret, one sub-key per kind, so that any
 * instance verifies what any other signed and a queue token never passes for an access token. Nobody
 * without the secret can forge one; the MAC is compared in constant time. The format is opaque to
 * clients: `<kind>1.<payload, base64url JSON>.<MAC, base64url>`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Longest token read; anything longer is refused before any work. */
export const MAX_TOKEN_LENGTH = 2048;

export interface QueuePass {
  eventId: string;
  identity: string;
  issuedAtMs: number;
}

export interface AccessPass {
  eventId: string;
  identity: string;
  /** The room's generation: a room deleted and set up again does not honour the old passes. */
  generation: string;
  place: number;
  admitAtMs: number;
  /** The end of the shopping session. */
  expiresAtMs: number;
}

type Kind = "q" | "a";

export class PassSigner {
  readonly #keys: Record<Kind, Buffer>;

  /** `key`: 32 bytes for the waiting room (config/signing-secret.ts: deriveKey(secret, "waiting-room")). */
  constructor(key: Buffer) {
    if (key.length < 32) throw new TypeError("the waiting room's key must have at least 32 bytes");
    this.#keys = {
      q: createHmac("sha256", key).update("queue-token").digest(),
      a: createHmac("sha256", key).update("access-token").digest(),
    };
  }

  signQueue(pass: QueuePass): string {
    return this.#sign("q", { e: pass.eventId, s: pass.identity, i: pass.issuedAtMs });
  }

  /** The pass, or null when the token is malformed, forged, or not a queue token. */
  readQueue(token: string | undefined): QueuePass | null {
    const body = this.#verify("q", token);
    if (!body || typeof body.e !== "string" || typeof body.s !== "string" || typeof body.i !== "number") {
      return null;
    }
    return { eventId: body.e, identity: body.s, issuedAtMs: body.i };
  }

  signAccess(pass: AccessPass): string {
    return this.#sign("a", {
      e: pass.eventId,
      s: pass.identity,
      g: pass.generation,
      p: pass.place,
      n: pass.admitAtMs,
      x: pass.expiresAtMs,
    });
  }

  /** The pass, or null when the token is malformed, forged, or not an access token. */
  readAccess(token: string | undefined): AccessPass | null {
    const body = this.#verify("a", token);
    if (
      !body ||
      typeof body.e !== "string" ||
      typeof body.s !== "string" ||
      typeof body.g !== "string" ||
      typeof body.p !== "number" ||
      typeof body.n !== "number" ||
      typeof body.x !== "number"
    ) {
      return null;
    }
    return {
      eventId: body.e,
      identity: body.s,
      generation: body.g,
      place: body.p,
      admitAtMs: body.n,
      expiresAtMs: body.x,
    };
  }

  #mac(kind: Kind, signed: string): Buffer {
    return createHmac("sha256", this.#keys[kind]).update(signed).digest();
  }

  #sign(kind: Kind, body: Record<string, string | number>): string {
    const signed = `${kind}1.${Buffer.from(JSON.stringify(body)).toString("base64url")}`;
    return `${signed}.${this.#mac(kind, signed).toString("base64url")}`;
  }

  /** The payload of a token whose MAC is right, parsed only then; null otherwise. */
  #verify(kind: Kind, token: string | undefined): Record<string, unknown> | null {
    if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH || !token.startsWith(`${kind}1.`)) {
      return null;
    }
    const dot = token.lastIndexOf(".");
    if (dot <= 3) return null;
    const signed = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), "base64url");
    const expected = this.#mac(kind, signed);
    // The length of a MAC is no secret; its bytes are compared in constant time.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    try {
      const body: unknown = JSON.parse(Buffer.from(signed.slice(3), "base64url").toString("utf8"));
      return body !== null && typeof body === "object" && !Array.isArray(body)
        ? (body as Record<string, unknown>)
        : null;
    } catch {
      return null;
    }
  }
}
