/**
 * The supervisor's view of the balancer: its runtime API under /_lb/ (docs/balancer.md), with the admin
 * token. The supervisor uses only this public API, so it works the same with a balancer it did not start.
 */
export interface BackendFigures {
  id: string;
  url: string;
  state: "up" | "down" | "draining";
  weight: number;
  active: number;
  requests: number;
  failures: number;
}

export class BalancerClient {
  readonly #baseUrl: string;
  readonly #token: string;

  constructor(baseUrl: string, adminToken: string) {
    this.#baseUrl = baseUrl;
    this.#token = adminToken;
  }

  async #call(method: string, path: string, body?: unknown): Promise<Response> {
    const response = await fetch(`${this.#baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    if (!response.ok && response.status !== 404) {
      const text = await response.text();
      throw new Error(`balancer ${method} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
    }
    return response;
  }

  async backends(): Promise<BackendFigures[]> {
    const response = await this.#call("GET", "/_lb/backends");
    return ((await response.json()) as { backends: BackendFigures[] }).backends;
  }

  /**
   * Adds an instance; returns the id the balancer gave it. An instance the balancer already lists under
   * this URL (an operator added it by hand, or an earlier add's answer was lost) is adopted: its id is
   * returned, not an error.
   */
  async add(url: string, weight = 1): Promise<string> {
    let response: Response;
    try {
      response = await this.#call("POST", "/_lb/backends", { url, weight });
    } catch (error) {
      const listed = (await this.backends().catch(() => [])).find((b) => b.url === url);
      if (listed) return listed.id;
      throw error;
    }
    const body = (await response.json()) as { id?: string; backend?: { id?: string } };
    const id = body.id ?? body.backend?.id;
    if (!id) throw new Error(`balancer did not say which id it gave ${url}`);
    return id;
  }

  /** Asks the balancer to send no new requests to the instance and remove it once idle. */
  async drain(id: string): Promise<void> {
    await (await this.#call("POST", `/_lb/backends/${encodeURIComponent(id)}/drain`)).body?.cancel();
  }

  async remove(id: string): Promise<void> {
    await (await this.#call("DELETE", `/_lb/backends/${encodeURIComponent(id)}`)).body?.cancel();
  }

  /** Resolves when the instance has left the balancer (drained) or `timeoutMs` passed; true if it left. */
  async waitGone(id: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const backend = (await this.backends()).find((b) => b.id === id);
      if (!backend || (backend.state === "draining" && backend.active === 0)) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }
}
