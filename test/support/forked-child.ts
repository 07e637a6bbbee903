/**
 * The parent's side of the test children (lock-child.ts, lock-store-child.ts): forks one with IPC,
 * sends it requests tagged with an id, and waits for its messages about them. Every wait is bounded, so
 * a stuck child fails the test instead of hanging it.
 */
import { fork, type ChildProcess } from "node:child_process";

/** No test message takes longer than this. */
const MESSAGE_TIMEOUT_MS = 20_000;

type WithoutId<T> = T extends { id: number } ? Omit<T, "id"> : never;

export class ForkedChild<Request extends { id: number }, Message extends { id: number; event: string }> {
  readonly process: ChildProcess;
  readonly #inbox: Message[] = [];
  readonly #waiters = new Set<() => void>();
  #nextId = 1;

  private constructor(child: ChildProcess) {
    this.process = child;
    child.on("message", (message: Message) => {
      this.#inbox.push(message);
      for (const wake of this.#waiters) wake();
    });
  }

  /** Forks `script` with `setup` as JSON in argv[2], and waits for its ready message (id 0, "done"). */
  static async start<R extends { id: number }, M extends { id: number; event: string }>(
    script: string,
    setup: unknown,
  ): Promise<ForkedChild<R, M>> {
    const child = new ForkedChild<R, M>(
      fork(script, [JSON.stringify(setup)], { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    );
    await child.next(0, "done");
    return child;
  }

  /** Sends a request; returns its id. */
  send(request: WithoutId<Request>): number {
    const id = this.#nextId++;
    this.process.send({ ...request, id });
    return id;
  }

  /** Waits for the message `event` about request `id`. */
  async next<E extends Message["event"]>(id: number, event: E): Promise<Extract<Message, { event: E }>> {
    const take = (): Extract<Message, { event: E }> | undefined => {
      const index = this.#inbox.findIndex((message) => message.id === id && message.event === event);
      return index < 0 ? undefined : (this.#inbox.splice(index, 1)[0] as Extract<Message, { event: E }>);
    };
    const found = take();
    if (found !== undefined) return found;
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        const message = take();
        if (message === undefined) return;
        cleanup();
        resolve(message);
      };
      const onExit = (): void => {
        cleanup();
        reject(new Error(`child exited while the test waited for ${event} of request ${id}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`child sent no ${event} for request ${id} within ${MESSAGE_TIMEOUT_MS} ms`));
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
  async run(request: WithoutId<Request>): Promise<Extract<Message, { event: "done" }>> {
    return this.next(this.send(request), "done" as Message["event"]) as Promise<
      Extract<Message, { event: "done" }>
    >;
  }

  /** Ends the child: SIGCONT first, in case a test left it stopped, then SIGKILL. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once("exit", () => resolve()));
    this.process.kill("SIGCONT");
    this.process.kill("SIGKILL");
    await exited;
  }
}
