/**
 * The one logger factory of every boxoffice process (each instance, the balancer, the supervisor of
 * `boxoffice up` and its control server): pino, one JSON object per line on stdout.
 *
 * It is a folder of its own at the bottom of the layers, beside `domain/`, and not part of `config/`:
 * config only turns flags and variables into values (no I/O, no side effects), while a logger is a
 * resource that writes; and layers that must not import `config/` (sales, store, lock, later webhooks)
 * may still log. It imports nothing of boxoffice.
 *
 * Human-facing output of the command line (the `status` table, the banner and admin-token hint of `up`, a
 * configuration error) is not logging and stays plain text: that is the CLI's user interface.
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * A logger at `level` whose every line carries `fields` (e.g. `{ instance: "i-1" }` or
 * `{ component: "balancer" }`) in place of pino's default pid and hostname, and the full date and time
 * (`"time":"2026-11-30T15:48:16.123Z"`, ISO 8601 in UTC) instead of pino's epoch milliseconds, so that the
 * lines of every process can be read and merged by a person as well as by a log shipper.
 */
export function createLogger(level: LogLevel, fields: Readonly<Record<string, string | number>>): Logger {
  return pino({ level, base: { ...fields }, timestamp: pino.stdTimeFunctions.isoTime });
}
