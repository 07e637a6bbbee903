/**
 * Instances found by DNS (`--backends-dns name:port`), like HAProxy's server-template: the name's A and
 * AAAA records are resolved every `intervalMs`; an address that appears becomes an instance (down until
 * its health checks pass `riseCount` times, then slow start), one that disappears is drained (it takes no
 * new request, its in-flight ones finish, then it leaves). A failed resolution changes nothing: the last
 * known set stays, so a DNS outage never empties the balancer. An answer with no address at all (the
 * name exists and has none, NODATA or NXDOMAIN) is an answer, and empties the set.
 */
import { Resolver } from "node:dns/promises";
import type { DnsBackendsSpec, DnsServerSpec } from "../config/balancer-config.js";
import type { Logger } from "../log/logger.js";

/** What discovery needs of the registry. */
export interface DiscoveryTarget {
  /** Adds `url`, to take requests only once its health checks pass. */
  addDiscovered(url: string): void;
  /** Drains `url`: no new requests; it leaves once its in-flight ones have finished. */
  drainDiscovered(url: string): void;
}

/** DNS answers that mean "no such address", as opposed to "could not ask". */
const EMPTY_ANSWER = new Set(["ENODATA", "ENOTFOUND"]);

export class DnsDiscovery {
  readonly #spec: DnsBackendsSpec;
  readonly #resolver: Resolver;
  readonly #intervalMs: number;
  readonly #target: DiscoveryTarget;
  readonly #log: Logger;
  /** The URLs of the last successful resolution. */
  #known = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #resolving: Promise<void> | undefined;
  #closed = false;
  /** Resolutions that failed in a row (logged once when it starts failing, once when it recovers). */
  #failures = 0;

  constructor(
    spec: DnsBackendsSpec,
    server: DnsServerSpec | undefined,
    intervalMs: number,
    target: DiscoveryTarget,
    log: Logger,
  ) {
    this.#spec = spec;
    // One try, a short timeout: the next interval is the retry.
    this.#resolver = new Resolver({ timeout: Math.min(intervalMs, 2000), tries: 1 });
    if (server !== undefined) {
      const host = server.host.includes(":") ? `[${server.host}]` : server.host;
      this.#resolver.setServers([`${host}:${server.port}`]);
    }
    this.#intervalMs = intervalMs;
    this.#target = target;
    this.#log = log;
  }

  /** The addresses of the last successful resolution, as instance URLs. */
  get known(): ReadonlySet<string> {
    return this.#known;
  }

  /** Resolves once (so the first instances are known when the balancer starts listening), then on a timer. */
  async init(): Promise<void> {
    await this.refresh();
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.refresh(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One resolution and the changes it brings; concurrent calls share one. */
  refresh(): Promise<void> {
    this.#resolving ??= this.#refresh().finally(() => {
      this.#resolving = undefined;
    });
    return this.#resolving;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#resolver.cancel();
  }

  async #refresh(): Promise<void> {
    const addresses = await this.#resolve();
    if (addresses === undefined || this.#closed) return;
    const urls = new Set(addresses.map((address) => this.#urlOf(address)));
    for (const url of urls) if (!this.#known.has(url)) this.#target.addDiscovered(url);
    for (const url of this.#known) if (!urls.has(url)) this.#target.drainDiscovered(url);
    if (urls.size !== this.#known.size || [...urls].some((url) => !this.#known.has(url)))
      this.#log.info({ name: this.#spec.name, instances: [...urls] }, "instances by DNS changed");
    this.#known = urls;
  }

  /** Every A and AAAA address, or `undefined` when DNS could not be asked (the last set then stays). */
  async #resolve(): Promise<string[] | undefined> {
    const [v4, v6] = await Promise.allSettled([
      this.#resolver.resolve4(this.#spec.name),
      this.#resolver.resolve6(this.#spec.name),
    ]);
    const failed = [v4, v6].filter(
      (result): result is PromiseRejectedResult =>
        result.status === "rejected" && !EMPTY_ANSWER.has((result.reason as { code?: string }).code ?? ""),
    );
    if (failed.length > 0) {
      if (this.#failures++ === 0)
        this.#log.warn(
          { name: this.#spec.name, err: failed[0]!.reason as Error },
          "DNS resolution failed; keeping the last known instances",
        );
      return undefined;
    }
    if (this.#failures > 0) this.#log.info({ name: this.#spec.name }, "DNS resolution works again");
    this.#failures = 0;
    return [...(v4.status === "fulfilled" ? v4.value : []), ...(v6.status === "fulfilled" ? v6.value : [])];
  }

  #urlOf(address: string): string {
    const host = address.includes(":") ? `[${address}]` : address;
    return new URL(`http://${host}:${this.#spec.port}`).origin;
  }
}
