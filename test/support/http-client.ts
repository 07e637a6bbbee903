/** A small HTTP client for the end-to-end tests, on undici, to 127.0.0.1 only. */
import { Agent, request } from "undici";
import { E2E_ADMIN_TOKEN } from "./server-process.js";

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

export interface CallOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** An object is sent as JSON; a string is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
  admin?: boolean;
}

export class HttpClient {
  readonly #agent: Agent;

  /**
   * `keepAliveTimeoutMs`: how long an idle connection is kept for reuse; keep it under the server's own
   * idle timeout (the balancer's is 5 s) or a request may go out on a socket the server is closing.
   */
  constructor(connectionsPerOrigin = 64, keepAliveTimeoutMs = 10_000) {
    this.#agent = new Agent({ connections: connectionsPerOrigin, keepAliveTimeout: keepAliveTimeoutMs });
  }

  async call<T = unknown>(baseUrl: string, path: string, options: CallOptions = {}): Promise<HttpAnswer<T>> {
    if (!baseUrl.startsWith("http://127.0.0.1:")) throw new Error(`tests only talk to 127.0.0.1: ${baseUrl}`);
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    if (options.admin) headers.authorization = `Bearer ${E2E_ADMIN_TOKEN}`;
    const response = await request(`${baseUrl}${path}`, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      dispatcher: this.#agent,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await response.body.text();
    let parsed: unknown = text;
    const type = String(response.headers["content-type"] ?? "");
    if (type.includes("json") && text !== "") parsed = JSON.parse(text);
    return { status: response.statusCode, headers: response.headers, body: parsed as T, text };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
