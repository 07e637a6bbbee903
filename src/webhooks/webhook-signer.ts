/**
 * The Standard Webhooks signature scheme (https://www.standardwebhooks.com/): every request carries
 * `webhook-id` (the message id, the same on every retry), `webhook-timestamp` (seconds since the epoch,
 * when this attempt was signed) and `webhook-signature: v1,<base64 of HMAC-SHA256 of
 * "{id}.{timestamp}.{body}">`, keyed with the base64-decoded part of the endpoint's secret
 * `whsec_<base64>`. docs/api.md shows a receiver how to check it.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const SECRET_PREFIX = "whsec_";
/** 24 random bytes: 192 bits, within the 24 to 64 bytes the scheme recommends. */
const SECRET_BYTES = 24;

/** A new endpoint secret, `whsec_<base64 of 24 random bytes>`. */
export function newEndpointSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

/** The HMAC key of a secret: the base64 after `whsec_` (a bare base64 secret is taken as well). */
function keyOf(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = Buffer.from(encoded, "base64");
  if (key.length === 0) throw new TypeError("a webhook secret is whsec_ and base64 of its key");
  return key;
}

/** `v1,<base64 signature>` of one attempt. */
export function signWebhook(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac("sha256", keyOf(secret))
    .update(`${messageId}.${timestampSeconds}.${body}`)
    .digest("base64");
  return `v1,${mac}`;
}

/** The three headers of one attempt, signed at `timestampSeconds`. */
export function webhookHeaders(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": signWebhook(secret, messageId, timestampSeconds, body),
  };
}

/**
 * What a receiver does, for tests and as the reference of docs/api.md: true when one of the
 * space-separated `v1,` signatures matches (compared in constant time) and the timestamp is within
 * `toleranceSeconds` of `nowSeconds`.
 */
export function verifyWebhook(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  if (!/^\d{1,12}$/.test(headers.timestamp)) return false;
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, headers.id, timestamp, body));
  return headers.signature.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
