/**
 * The span of each traced request of an instance (`--otel-endpoint`), kept beside the request, and the
 * sell path's phases turned into its child spans: the wait in the queue, the wait for the lock, and the
 * store's batch with its commit.
 */
import type { FastifyRequest } from "fastify";
import type { BatchPhases, SellTrace } from "../sales/sell-path.js";
import type { RequestSpan } from "../telemetry/tracing.js";

const spans = new WeakMap<FastifyRequest, RequestSpan>();

/** A performance.now() value as epoch milliseconds, as spans take them. */
const epochMs = (monotonicMs: number): number => performance.timeOrigin + monotonicMs;

export function setRequestSpan(request: FastifyRequest, span: RequestSpan): void {
  spans.set(request, span);
}

export function requestSpanOf(request: FastifyRequest): RequestSpan | undefined {
  return spans.get(request);
}

/** What the sell path reports for a traced request; `undefined` when the request is not traced. */
export function sellTraceOf(request: FastifyRequest): SellTrace | undefined {
  const span = spans.get(request);
  if (span === undefined) return undefined;
  return {
    batchRan(phases: BatchPhases) {
      const size = { "boxoffice.batch.size": phases.batchSize };
      span.child("sell.queue", epochMs(phases.queuedAtMs), epochMs(phases.lockAskedAtMs), size);
      const granted = phases.lockGrantedAtMs >= 0;
      span.child(
        "sell.lock-wait",
        epochMs(phases.lockAskedAtMs),
        epochMs(granted ? phases.lockGrantedAtMs : phases.storeDoneAtMs),
        size,
        !granted,
      );
      if (granted)
        span.child(
          "sell.store-batch",
          epochMs(phases.lockGrantedAtMs),
          epochMs(phases.storeDoneAtMs),
          { ...size, "boxoffice.batch.includes_commit": true },
          phases.failed,
        );
    },
  };
}
