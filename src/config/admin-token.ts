/**
 * The admin token: BOXOFFICE_ADMIN_TOKEN when set, else `<data>/admin-token`, else a new random one
 * written there (mode 0600) and printed once (config/shared-secret.ts).
 */
import { resolveSharedSecret } from "./shared-secret.js";

export const ADMIN_TOKEN_FILE = "admin-token";

export interface AdminToken {
  token: string;
  /** True when this call generated it (the caller prints it, once). */
  generated: boolean;
}

export async function resolveAdminToken(fromEnv: string | null, dataDir: string): Promise<AdminToken> {
  const { value, generated } = await resolveSharedSecret(fromEnv, dataDir, ADMIN_TOKEN_FILE, 24);
  return { token: value, generated };
}
