/**
 * The signing secret: the key behind everything an instance signs for a buyer and another instance must
 * verify (order access secrets, waiting-room passes). BOXOFFICE_SIGNING_SECRET when set, else
 * `<data>/signing-secret`, else generated there (mode 0600). It is never printed: nobody needs to read
 * it, only every instance needs the same one. Each use derives its own key from it (`deriveKey`), so a
 * value signed for one purpose is never valid for another.
 */
import { hkdfSync } from "node:crypto";
import { resolveSharedSecret } from "./shared-secret.js";

export const SIGNING_SECRET_FILE = "signing-secret";

export async function resolveSigningSecret(fromEnv: string | null, dataDir: string): Promise<string> {
  return (await resolveSharedSecret(fromEnv, dataDir, SIGNING_SECRET_FILE, 32)).value;
}

/** A 32-byte key for one purpose (e.g. "order-access", "waiting-room"), derived with HKDF-SHA256. */
export function deriveKey(signingSecret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", signingSecret, "boxoffice", purpose, 32));
}
