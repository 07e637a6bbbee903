/** Runs buyer processes (postgres-store-buyer.ts) against one event of a PostgreSQL store. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const BUYER = fileURLToPath(new URL("./postgres-store-buyer.js", import.meta.url));

/** What one buyer process reports (see postgres-store-buyer.ts). */
export interface BuyerReport {
  sold: number;
  refused: Record<string, number>;
  errors: Record<string, number>;
  orders: string[];
}

/** Runs `processes` buyer processes against one event and returns their reports. */
export async function runBuyers(
  url: string,
  schema: string,
  eventId: string,
  options: {
    processes: number;
    buyers: number;
    concurrency: number;
    kind: "general" | "seated" | "typed";
    seats: number;
  },
): Promise<BuyerReport[]> {
  const results = await Promise.all(
    Array.from({ length: options.processes }, () =>
      run(
        process.execPath,
        [
          BUYER,
          url,
          schema,
          eventId,
          String(options.buyers),
          String(options.concurrency),
          options.kind,
          String(options.seats),
        ],
        { timeout: 90_000 },
      ),
    ),
  );
  return results.map((result) => JSON.parse(result.stdout) as BuyerReport);
}
