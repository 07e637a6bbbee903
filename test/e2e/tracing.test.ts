/**
 * Optional OpenTelemetry traces (`--otel-endpoint`) with real processes: a real balancer and a real
 * instance export spans over OTLP/HTTP (JSON) to a small receiver of the test's own, which checks that the
 * spans of one purchase arrive and hang together: the client's traceparent is the parent of the
 * balancer's span, which is the parent of the instance's request span (the balancer passes its own
 * traceparent on), which is the parent of the sell path's queue, lock-wait and store-batch spans.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { request } from "undici";
import { spawnBalancer, type SpawnedBalancer } from "../support/backend-fixture.js";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../support/server-process.js";

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
}

/** An OTLP/HTTP receiver taking JSON (`POST /v1/traces`), keeping every span it gets. */
class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly #server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
      if (
        req.method !== "POST" ||
        req.url !== "/v1/traces" ||
        !String(req.headers["content-type"]).includes("json")
      ) {
        res.writeHead(400).end();
        return;
      }
      this.#take(JSON.parse(body.toString("utf8")) as OtlpTraces);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }

  #take(traces: OtlpTraces): void {
    for (const resourceSpans of traces.resourceSpans ?? []) {
      const service =
        resourceSpans.resource?.attributes?.find((attribute) => attribute.key === "service.name")?.value
          ?.stringValue ?? "";
      for (const scope of resourceSpans.scopeSpans ?? [])
        for (const span of scope.spans ?? [])
          this.spans.push({
            service,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId || undefined,
            name: span.name,
          });
    }
  }
}

interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value?: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string }[] }[];
  }[];
}

describe("OpenTelemetry traces of the sell path (--otel-endpoint)", () => {
  const receiver = new OtlpReceiver();
  let dataDir: string;
  let instance: ServerProcess;
  let balancer: SpawnedBalancer;
  let eventId: string;

  const spansOf = async (traceId: string, count: number): Promise<ReceivedSpan[]> => {
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      const spans = receiver.spans.filter((span) => span.traceId === traceId);
      if (spans.length >= count) return spans;
      await sleep(50);
    }
    assert.fail(`fewer than ${count} spans of trace ${traceId} arrived: ${JSON.stringify(receiver.spans)}`);
  };
  const buy = async (headers: Record<string, string>) => {
    const response = await request(`${balancer.url}/v1/events/${eventId}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID(), ...headers },
      body: JSON.stringify({ customerId: "traced-buyer", quantity: 1 }),
    });
    await response.body.dump();
    assert.equal(response.statusCode, 201);
  };

  before(async () => {
    const endpoint = await receiver.start();
    dataDir = mkdtempSync(join(tmpdir(), "boxoffice-tracing-"));
    instance = await ServerProcess.start({
      dataDir,
      instanceId: "traced",
      args: ["--otel-endpoint", endpoint],
    });
    balancer = await spawnBalancer(["--backend", instance.url, "--otel-endpoint", endpoint]);
    const created = await request(`${instance.url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
      body: JSON.stringify({ name: "Traced", capacity: 100 }),
    });
    assert.equal(created.statusCode, 201);
    eventId = ((await created.body.json()) as { id: string }).id;
  });

  after(async () => {
    await balancer?.stop();
    await stopAll();
    await receiver.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("links the client's span, the balancer's, the instance's and the sell path's phases", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const clientSpanId = "b7ad6b7169203331";
    await buy({ traceparent: `00-${traceId}-${clientSpanId}-01` });
    const spans = await spansOf(traceId, 5);
    const proxied = spans.find((span) => span.service === "boxoffice-balancer");
    assert.ok(proxied, JSON.stringify(spans));
    assert.equal(proxied.parentSpanId, clientSpanId);
    const served = spans.find((span) => span.name === "POST /v1/events/:eventId/orders");
    assert.ok(served, JSON.stringify(spans));
    assert.equal(served.service, "boxoffice-instance");
    assert.equal(served.parentSpanId, proxied.spanId, "the balancer passed its own traceparent on");
    for (const phase of ["sell.queue", "sell.lock-wait", "sell.store-batch"]) {
      const span = spans.find((candidate) => candidate.name === phase);
      assert.ok(span, `${phase} in ${JSON.stringify(spans)}`);
      assert.equal(span.parentSpanId, served.spanId, phase);
    }
  });

  it("starts the trace at the balancer when the client sends none", async () => {
    const before = new Set(receiver.spans.map((span) => span.spanId));
    await buy({});
    const until = Date.now() + 20_000;
    let root: ReceivedSpan | undefined;
    while (Date.now() < until && root === undefined) {
      root = receiver.spans.find(
        (span) =>
          !before.has(span.spanId) &&
          span.service === "boxoffice-balancer" &&
          span.parentSpanId === undefined,
      );
      if (root === undefined) await sleep(50);
    }
    assert.ok(root, "a balancer span without parent");
    const spans = await spansOf(root.traceId, 5);
    const served = spans.find((span) => span.name === "POST /v1/events/:eventId/orders");
    assert.equal(served?.parentSpanId, root.spanId);
  });
});
