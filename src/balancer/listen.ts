/**
 * Listens on `host:port` with room for `backlog` connections waiting to be accepted, and resolves once
 * listening, or rejects (port in use, address not here).
 */
import type { Server } from "node:net";

export function listen(server: Server, port: number, host: string, backlog: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, backlog }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
