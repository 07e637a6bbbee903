/** Tests that need a tool from Debian's packages (haproxy, nginx, ss …). */
import { spawnSync } from "node:child_process";

/**
 * Why a test needing `binary` must skip (it is not installed), or undefined when it is there. Under
 * CI=true a missing tool is a failure, never a skip.
 */
export function skipUnlessInstalled(binary: string, versionFlag = "-v"): string | undefined {
  if (spawnSync(binary, [versionFlag], { stdio: "ignore" }).error === undefined) return undefined;
  const reason = `${binary} is not installed (scripts/install-system-deps.sh installs it)`;
  if (process.env.CI === "true") throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
  return reason;
}
