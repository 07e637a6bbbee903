/** The parent's side of test/support/lock-child.ts: forks children and waits for their messages. */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ChildRequest, ChildSetup } from "./lock-child.js";

const CHILD = fileURLToPath(new URL("./lock-child.js", import.meta.url));
/** No test message takes longer than this; a stuck child fails the test instead of hanging it. */
const MESSAGE_TIMEOUT_MS = 20_000;

type Request = ChildRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class LockChild {
  readonly process: ChildProcess;
  readonly #inbox: ChildMessage[] = [];
  readonly #waiters = new Set<() => void>();
  #nextId = 1;

  private constructor(child: ChildProcess) {
    this.process = child;
    child.on("message", (message: ChildMessage) => {
      this.#inbox.push(message);
      for (const wake of this.#waiters) wake();
    });
  }

  static async start(setup: ChildSetup): Promise<LockChild> {
    const child = new LockChild(
      fork(CHILD, [JSON.stringify(setup)], { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    );
    await child.next(0, "done");
    return child;
  }

  /** Sends a request; returns its id. */
  send(request: Request): number {
    const id = this.#nextId++;
    this.process.send({ ...request, id });
    return id;
  }

  /** Waits for the message `event` of request `id`. */
  async next<E extends ChildMessage["event"]>(
    id: number,
    event: E,
  ): Promise<Extract<ChildMessage, { event: E }>> {
    const find = () => {
      const index = this.#inbox.findIndex((message) => message.id === id && message.event === event);
      return index < 0 ? undefined : (this.#inbox.splice(index, 1)[0] as Extract<ChildMessage, { event: E }>);
    };
    const found = find();
    if (found !== undefined) return found;
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        const message = find();
        if (message === undefined) return;
        cleanup();
        resolve(message);
      };
      const onExit = (): void => {
        cleanup();
        reject(new Error(`lock child exited while waiting for ${event} of request ${id}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`lock child sent no ${event} for request ${id} within ${MESSAGE_TIMEOUT_MS} ms`));
      }, MESSAGE_TIMEOUT_MS);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        this.process.off("exit", onExit);
      };
      this.#waiters.add(wake);
      this.process.once("exit", onExit);
    });
  }

  /** Sends a request and waits for its "done". */
  async run(request: Request): Promise<Extract<ChildMessage, { event: "done" }>> {
    return this.next(this.send(request), "done");
  }

  /** Ends the child (SIGCONT first, in case a test left it stopped). */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once("exit", () => resolve()));
    this.process.kill("SIGCONT");
    this.process.kill("SIGKILL");
    await exited;
  }
}
