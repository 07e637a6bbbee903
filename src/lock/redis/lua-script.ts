/**
 * A Lua script kept in a `.lua` file beside this module (build copies them into dist) and run by its
 * SHA1 with EVALSHA, falling back to EVAL when the server does not know it yet (after a restart).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

export class LuaScript {
  readonly #source: string;
  readonly #sha1: string;

  constructor(fileName: string) {
    this.#source = readFileSync(new URL(`./${fileName}`, import.meta.url), "utf8");
    this.#sha1 = createHash("sha1").update(this.#source).digest("hex");
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha1, keys.length, ...keys, ...args);
    } catch (error) {
      // NOSCRIPT is the error code Redis puts first in its reply: the script cache was empty.
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
