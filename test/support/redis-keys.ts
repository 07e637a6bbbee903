/** A key prefix of its own per test, and its removal afterwards, for tests on the shared Redis. */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";

export function testKeyPrefix(area: string): string {
  return `boxoffice-test:${area}:${randomUUID()}:`;
}

export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}
