/** Listens on `host:port` and resolves once listening, or rejects (port in use, address not here). */
import type { Server } from "node:net";

export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
