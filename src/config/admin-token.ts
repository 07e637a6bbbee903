/**
 * The admin token: BOXOFFICE_ADMIN_TOKEN when set, else `<data>/admin-token`, else a new random one
 * written there (mode 0600) and printed once. Several processes starting at once agree on one token:
 * the file is created exclusively (`wx`) and whoever loses the race reads the winner's.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "../domain/errors.js";

export const ADMIN_TOKEN_FILE = "admin-token";

export interface AdminToken {
  token: string;
  /** True when this call generated it (the caller prints it, once). */
  generated: boolean;
}

async function readToken(file: string): Promise<string | null> {
  try {
    const token = (await fs.readFile(file, "utf8")).trim();
    return token === "" ? null : token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

export async function resolveAdminToken(fromEnv: string | null, dataDir: string): Promise<AdminToken> {
  if (fromEnv) return { token: fromEnv, generated: false };
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readToken(file);
  if (existing) return { token: existing, generated: false };
  const token = randomBytes(24).toString("base64url");
  try {
    // Write to a private temp file, then link it into place: `link` fails with EEXIST when another
    // process won, and a reader never sees a half-written token.
    const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await fs.writeFile(temp, `${token}\n`, { mode: 0o600, flag: "wx" });
    try {
      await fs.link(temp, file);
    } finally {
      await fs.rm(temp, { force: true });
    }
    return { token, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // Another process created it first; its token is complete because it was linked whole.
  for (let attempt = 0; attempt < 50; attempt++) {
    const winner = await readToken(file);
    if (winner) return { token: winner, generated: false };
    await sleep(20);
  }
  throw new ConfigError(`${file} exists but stays empty`);
}
