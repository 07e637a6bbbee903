/**
 * Secrets every instance on one data directory must share: the admin token and the signing secret. Each
 * is its BOXOFFICE_* variable when set, else `<data>/<file>`, else a new random one written there (mode
 * 0600). Several processes starting at once agree on one value: the file is linked into place
 * exclusively and whoever loses the race reads the winner's. Instances on several hosts do not share a
 * data directory: there the operator sets the variables (docs/scaling-out.md).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "../domain/errors.js";

export interface SharedSecret {
  value: string;
  /** True when this call generated it. */
  generated: boolean;
}

async function readSecret(file: string): Promise<string | null> {
  try {
    const value = (await fs.readFile(file, "utf8")).trim();
    return value === "" ? null : value;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** `bytes` random bytes, base64url, when the secret has to be generated. */
export async function resolveSharedSecret(
  fromEnv: string | null,
  dataDir: string,
  fileName: string,
  bytes: number,
): Promise<SharedSecret> {
  if (fromEnv) return { value: fromEnv, generated: false };
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, fileName);
  const existing = await readSecret(file);
  if (existing) return { value: existing, generated: false };
  const value = randomBytes(bytes).toString("base64url");
  try {
    // Write to a private temp file, then link it into place: `link` fails with EEXIST when another
    // process won, and a reader never sees a half-written secret.
    const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await fs.writeFile(temp, `${value}\n`, { mode: 0o600, flag: "wx" });
    try {
      await fs.link(temp, file);
    } finally {
      await fs.rm(temp, { force: true });
    }
    return { value, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  // Another process created it first; its value is complete because it was linked whole.
  for (let attempt = 0; attempt < 50; attempt++) {
    const winner = await readSecret(file);
    if (winner) return { value: winner, generated: false };
    await sleep(20);
  }
  throw new ConfigError(`${file} exists but stays empty`);
}
