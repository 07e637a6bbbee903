/**
 * What the browser tests of the storefront share with the screenshot script (bench/screenshots.ts): a
 * real cluster (`boxoffice up`: a supervisor, the balancer and instance processes) on a fresh data
 * directory, an admin client to set events up through the API, and headless Chromium from Debian's
 * `chromium` package driven by playwright-core.
 *
 * Chromium missing: on a developer's machine the suite is skipped with a clear reason; under CI=true it
 * is a failure (.ci/run installs the package).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import { freePort } from "./backend-fixture.js";
import { ClusterProcess } from "./cluster-process.js";
import { HttpClient, type CallOptions, type HttpAnswer } from "./http-client.js";

export { chromiumSkipReason, launchChromium } from "./headless-chromium.js";

/** A cluster to shop at, and the admin's calls to set it up. */
export class StorefrontSite {
  readonly url: string;
  readonly #cluster: ClusterProcess;
  readonly #dataDir: string;
  /** Idle connections are dropped well before the balancer closes them (5 s). */
  readonly #http = new HttpClient(16, 1000);

  private constructor(cluster: ClusterProcess, dataDir: string) {
    this.#cluster = cluster;
    this.url = cluster.url;
    this.#dataDir = dataDir;
  }

  static async start(instances = 2): Promise<StorefrontSite> {
    const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-storefront-"));
    const cluster = await ClusterProcess.start(dataDir, await freePort(), [
      "--instances",
      String(instances),
      "--instance-port-base",
      String(20_000 + Math.floor(Math.random() * 30_000)),
      "--cluster-log-level",
      "warn",
    ]);
    const site = new StorefrontSite(cluster, dataDir);
    // "ready" means the instances are; the balancer may not have marked one healthy yet.
    for (let attempt = 0; attempt < 100; attempt++) {
      if ((await site.call("/health")).status === 200) break;
      await sleep(100);
    }
    return site;
  }

  /** A call through the balancer; 503s (an instance not yet seen healthy) are retried. */
  async call<T = unknown>(path: string, options: CallOptions = {}): Promise<HttpAnswer<T>> {
    for (let attempt = 0; ; attempt++) {
      const answer = await this.#http.call<T>(this.url, path, options);
      if (answer.status !== 503 || attempt >= 50) return answer;
      await sleep(100);
    }
  }

  async createEvent(body: Record<string, unknown>): Promise<Event> {
    const answer = await this.call<Event>("/v1/events", { body, admin: true });
    if (answer.status !== 201) throw new Error(`createEvent: ${answer.status} ${answer.text}`);
    return answer.body;
  }

  async admin<T = unknown>(method: "POST" | "PUT" | "PATCH" | "DELETE", path: string, body?: unknown) {
    const answer = await this.call<T>(path, { method, body: body ?? {}, admin: true });
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
    return answer.body;
  }

  async close(): Promise<void> {
    await this.#cluster.stop();
    await this.#http.close();
    rmSync(this.#dataDir, { recursive: true, force: true });
  }
}
