/**
 * Chooses the server side clients talk to (`front`: raw or node) from the balancer's config; both take
 * the same options and hand the balancer the same FrontRequest/FrontResponse.
 */
import type { BalancerConfig } from "../config/balancer-config.js";
import type { Front, FrontOptions } from "./front.js";
import { createNodeFront } from "./node-front.js";
import { createRawFrontServer } from "./raw-front.js";

export function createFront(
  config: Readonly<BalancerConfig>,
  handlers: Pick<FrontOptions, "onRequest" | "onClientError">,
): Front {
  const options: FrontOptions = {
    maxHeaderBytes: config.maxHeaderBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    // A request is never cut off before its head may have come in.
    requestTimeoutMs: Math.max(config.requestTimeoutMs, config.headersTimeoutMs),
    clientKeepAliveMs: config.clientKeepAliveMs,
    clientSendTimeoutMs: config.clientSendTimeoutMs,
    maxClientConnections: config.maxClientConnections,
    onRequest: handlers.onRequest,
    onClientError: handlers.onClientError,
  };
  switch (config.front) {
    case "raw":
      return createRawFrontServer(options);
    case "node":
      return createNodeFront(options);
  }
}
