/**
 * Optional OpenTelemetry traces (`--otel-endpoint`, or the standard OTEL_EXPORTER_OTLP_ENDPOINT): spans
 * exported in batches over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`, their parents taken from and given
 * on by W3C `traceparent` headers. Off by default, and then nothing of OpenTelemetry is even loaded: the
 * packages come in by dynamic `import()` in `startTracing`, and every caller holds a `Tracing` or
 * `undefined`, so that the cost of tracing off is one test per request.
 *
 * It is a folder at the bottom of the layers, like log/: the instance (server/) and the balancer use it,
 * and it imports nothing of boxoffice. The sell path (sales/) does not know it: it reports a batch's
 * phases through its own small interface, which the server turns into spans here.
 */
import type { Context, Span, Tracer } from "@opentelemetry/api";

/** A request's headers, as Node and the balancer's fronts hold them. */
export type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** The span of one request, from its start to its answer. */
export interface RequestSpan {
  /** The W3C traceparent that names this span as the parent of the next hop's. */
  readonly traceparent: string;
  /** Records a finished child span, its times in epoch milliseconds. */
  child(name: string, startMs: number, endMs: number, attributes?: Attributes, failed?: boolean): void;
  /** Ends the span with the status sent (-1: none) and what else is known. */
  end(statusCode: number, attributes?: Attributes): void;
}

export type Attributes = Readonly<Record<string, string | number | boolean>>;

export interface Tracing {
  /** Starts a server span named `name`, child of the request's `traceparent` when it has a valid one. */
  startRequest(name: string, headers: Headers, attributes?: Attributes): RequestSpan;
  /** Exports what is still waiting, then stops. Idempotent. */
  close(): Promise<void>;
}

/** The base URL given (`http://collector:4318`), or a URL already ending in /v1/traces. */
export function tracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, "");
  return trimmed.endsWith("/v1/traces") ? trimmed : `${trimmed}/v1/traces`;
}

/**
 * Loads OpenTelemetry and starts exporting spans of `serviceName`. `exportDelayMs`: the longest a span
 * waits before it is sent (batches are sent sooner when full).
 */
export async function startTracing(
  endpoint: string,
  serviceName: string,
  exportDelayMs = 2000,
): Promise<Tracing> {
  const [api, core, resources, sdk, exporterModule] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/core"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
  ]);
  const exporter = new exporterModule.OTLPTraceExporter({ url: tracesUrl(endpoint) });
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ "service.name": serviceName }),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: exportDelayMs,
        // A collector that is down must not make the process hold spans without bound: past it, dropped.
        maxQueueSize: 8192,
      }),
    ],
  });
  const tracer: Tracer = provider.getTracer("boxoffice");
  const propagator = new core.W3CTraceContextPropagator();
  const getter = {
    keys: (carrier: Headers) => Object.keys(carrier),
    get: (carrier: Headers, key: string) => carrier[key.toLowerCase()],
  };
  const setter = {
    set: (carrier: Record<string, string>, key: string, value: string) => {
      carrier[key] = value;
    },
  };
  let closing: Promise<void> | undefined;

  return {
    startRequest(name, headers, attributes) {
      const parent: Context = propagator.extract(api.ROOT_CONTEXT, headers, getter);
      const span: Span = tracer.startSpan(name, { kind: api.SpanKind.SERVER, attributes }, parent);
      const context = api.trace.setSpan(parent, span);
      const carrier: Record<string, string> = {};
      propagator.inject(context, carrier, setter);
      return {
        traceparent: carrier.traceparent ?? "",
        child(childName, startMs, endMs, childAttributes, failed) {
          const child = tracer.startSpan(
            childName,
            { startTime: startMs, attributes: childAttributes },
            context,
          );
          if (failed) child.setStatus({ code: api.SpanStatusCode.ERROR });
          child.end(endMs);
        },
        end(statusCode, endAttributes) {
          if (statusCode >= 0) span.setAttribute("http.response.status_code", statusCode);
          if (endAttributes) span.setAttributes(endAttributes);
          if (statusCode < 0 || statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
    close() {
      closing ??= provider.shutdown().catch(() => undefined);
      return closing;
    },
  };
}
