/**
 * Reads a proxied request's body for the balancer: whole when it is small enough to send again on a
 * retry, else streamed.
 */
import { Readable } from "node:stream";
import type { FrontRequest } from "./front.js";

const afterIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Holds a body of up to `limitBytes` so the request can be sent again; a larger body is streamed (what
 * was read so far, then the rest) and the request is not retried.
 *
 * Each streamed chunk is passed on after the I/O callbacks of the moment have run (setImmediate): an
 * instance that refuses a large body answers and closes, and its answer must be read before the next
 * chunk is written, since a write that fails on the closed connection destroys the socket with the
 * answer still unread in it.
 */
export function readBody(req: FrontRequest, limitBytes: number): Promise<Buffer | Readable> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= limitBytes) return;
      cleanup();
      req.pause();
      resolve(
        Readable.from(
          (async function* () {
            yield* chunks;
            for await (const chunk of req as AsyncIterable<Buffer>) {
              await afterIo();
              yield chunk;
            }
          })(),
          { objectMode: false },
        ),
      );
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}
