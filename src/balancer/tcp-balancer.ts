/**
 * The L4 mode: least-connections over TCP connections instead of HTTP requests. Each client connection
 * is piped, bytes untouched, to the instance with the fewest open connections relative to its weight.
 * Cheapest per request, but it balances connections, not requests: a keep-alive client stays on one
 * instance, nothing is retried once connected, and there are no `/_lb/` endpoints on the port (health
 * checks, passive ejection on refused connections and the metrics registry still run).
 */
import net, { type AddressInfo, type Socket } from "node:net";
import type { BalancerConfig } from "../config/balancer-config.js";
import { problemResponseText } from "../http/problem-details.js";
import type { Logger } from "../log/logger.js";
import type { Backend } from "./backend.js";
import { balancerProblem } from "./balancer-errors.js";
import { BackendRegistry } from "./backend-registry.js";
import { DnsDiscovery } from "./dns-discovery.js";
import { listen } from "./listen.js";
import { BalancerMetrics } from "./balancer-metrics.js";
import { LeastConnectionsPicker } from "./least-connections-picker.js";

export class TcpBalancer {
  readonly #config: Readonly<BalancerConfig>;
  readonly metrics: BalancerMetrics;
  readonly registry: BackendRegistry;
  readonly #picker = new LeastConnectionsPicker();
  readonly #server: net.Server;
  readonly #sockets = new Set<Socket>();
  readonly #discovery: DnsDiscovery | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: Readonly<BalancerConfig>, log: Logger) {
    this.#config = config;
    this.metrics = new BalancerMetrics(
      () => this.registry.list,
      () => 0,
    );
    this.registry = new BackendRegistry(config, this.metrics, undefined, () => undefined, log);
    this.#server = net.createServer({ noDelay: true }, (client) => this.#onConnection(client, new Set()));
    this.#server.maxConnections = config.maxClientConnections;
    this.#discovery =
      config.backendsDns === undefined
        ? undefined
        : new DnsDiscovery(config.backendsDns, config.dnsServer, config.dnsIntervalMs, this.registry, log);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async init(): Promise<void> {
    this.registry.init();
    await this.#discovery?.init();
    await listen(this.#server, this.#config.port, this.#config.host, this.#config.listenBacklog);
  }

  close(graceMs = 5000): Promise<void> {
    this.#closing ??= (async () => {
      this.#discovery?.close();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      const timer = setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      await this.registry.close();
    })();
    return this.#closing;
  }

  #onConnection(client: Socket, tried: Set<Backend>): void {
    const backend = this.#picker.pick(this.registry.list, {
      nowMs: Date.now(),
      slowStartMs: this.#config.slowStartMs,
      maxActive: this.#config.maxClientConnections,
      exclude: tried,
    });
    if (backend === undefined) {
      this.metrics.rejected("no_backend");
      client.end(
        problemResponseText(
          balancerProblem(503, "unavailable", "no instance is up"),
          `Retry-After: ${this.#config.retryAfterSeconds}\r\n`,
        ),
      );
      return;
    }
    this.registry.acquire(backend);
    this.#sockets.add(client);
    const upstream = net.connect({ host: backend.host, port: backend.port, noDelay: true });
    this.#sockets.add(upstream);
    let connected = false;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
      this.registry.release(backend);
    };
    const connectTimer = setTimeout(
      () => upstream.destroy(new Error("connect timeout")),
      this.#config.connectTimeoutMs,
    );
    upstream.once("connect", () => {
      clearTimeout(connectTimer);
      connected = true;
      this.registry.recordSuccess(backend);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on("error", () => {
      clearTimeout(connectTimer);
      if (connected) return;
      // Nothing was sent yet: the client's bytes wait in its socket, so another instance can take them.
      this.registry.recordFailure(backend, true);
      release();
      if (tried.size < this.#config.maxRetries && !client.destroyed) {
        tried.add(backend);
        this.registry.recordRetry(backend);
        this.#onConnection(client, tried);
      } else client.destroy();
    });
    upstream.on("close", () => {
      clearTimeout(connectTimer);
      if (!connected) return;
      client.destroy();
      release();
    });
    client.on("error", () => upstream.destroy());
    client.on("close", () => {
      upstream.destroy();
      release();
    });
  }
}
