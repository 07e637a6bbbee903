/**
 * Builds the configured lock provider. The core never names a concrete provider; heavy clients load
 * with a dynamic import() so the embedded default does not need them.
 */
import { BoxofficeError } from "../domain/errors.js";
import type { LockProvider } from "./lock-provider.js";
import { NoneLock } from "./none/none-lock.js";

export type LockConfig = { kind: "none" };

/** Parses the `--lock` value ("none", later "file", "postgres", "redis://h:p[,redis://h:p…]"). */
export function parseLockSetting(value: string): LockConfig {
  if (value === "none") return { kind: "none" };
  throw new BoxofficeError("INVALID_CONFIG", `unknown lock "${value}"`);
}

export async function createLockProvider(config: LockConfig): Promise<LockProvider> {
  switch (config.kind) {
    case "none":
      return new NoneLock();
  }
}
