/**
 * Where the tests find PostgreSQL and Redis, and what to do when they are missing: on a developer's
 * machine the suites that need them are skipped with a reason; under CI=true a missing service is a
 * failure, never a skip.
 */
import net from "node:net";

export const TEST_POSTGRES_URL =
  process.env.BOXOFFICE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const TEST_REDIS_URL = process.env.BOXOFFICE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

function answers(url: string, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Resolves to `undefined` when the service answers, or to a skip reason when it does not.
 * Under CI=true it throws instead, so the suite fails.
 */
export async function serviceSkipReason(name: string, url: string): Promise<string | undefined> {
  if (await answers(url)) return undefined;
  const reason = `${name} does not answer at ${url}`;
  if (process.env.CI === "true") throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
  console.log(`# SKIPPED: ${reason}`);
  return reason;
}

export const postgresSkip = (): Promise<string | undefined> =>
  serviceSkipReason("PostgreSQL", TEST_POSTGRES_URL);
export const redisSkip = (): Promise<string | undefined> => serviceSkipReason("Redis", TEST_REDIS_URL);
