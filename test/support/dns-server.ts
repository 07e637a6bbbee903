/**
 * A tiny DNS server for the balancer's DNS discovery tests (node:dgram, UDP on 127.0.0.1, port 0): it
 * answers A queries from a table the test changes, AAAA queries with no address (NODATA), unknown names
 * with NXDOMAIN, and, when told to fail, every query with SERVFAIL. It counts the queries it got, so a
 * test can wait for "the balancer asked again" instead of sleeping. Test support only: one question per
 * query, no compression in questions, no EDNS in answers (resolvers take a plain answer).
 */
import dgram from "node:dgram";
import type { AddressInfo } from "node:net";

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

export class TestDnsServer {
  readonly #socket = dgram.createSocket("udp4");
  /** Name (lower case, no final dot) → IPv4 addresses. */
  readonly records = new Map<string, string[]>();
  /** Answer SERVFAIL to everything (a DNS outage). */
  failing = false;
  /** Queries received so far. */
  queries = 0;

  async start(): Promise<void> {
    this.#socket.on("message", (message, remote) => {
      const answer = this.#answer(message);
      if (answer !== undefined) this.#socket.send(answer, remote.port, remote.address);
    });
    await new Promise<void>((resolve) => this.#socket.bind(0, "127.0.0.1", resolve));
  }

  /** `ip:port`, for `--dns-server`. */
  get address(): string {
    const { address, port } = this.#socket.address() as AddressInfo;
    return `${address}:${port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #answer(query: Buffer): Buffer | undefined {
    if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
    // The question: labels up to the zero length, then type and class.
    const labels: string[] = [];
    let at = 12;
    while (at < query.length && query[at] !== 0) {
      const length = query[at]!;
      labels.push(query.subarray(at + 1, at + 1 + length).toString("latin1"));
      at += 1 + length;
    }
    const questionEnd = at + 5;
    if (questionEnd > query.length) return undefined;
    const type = query.readUInt16BE(at + 1);
    const name = labels.join(".").toLowerCase();
    this.queries++;
    const addresses = this.records.get(name);
    const rcode = this.failing ? RCODE_SERVFAIL : addresses === undefined ? RCODE_NXDOMAIN : 0;
    const answers = rcode === 0 && type === TYPE_A ? addresses! : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0); // the query's id
    // QR (answer), the query's opcode and RD, RA, and the rcode.
    header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const records = answers.map((address) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      record.writeUInt16BE(TYPE_A, 2);
      record.writeUInt16BE(CLASS_IN, 4);
      record.writeUInt32BE(0, 6); // TTL 0: never cached
      record.writeUInt16BE(4, 10);
      address.split(".").forEach((part, index) => record.writeUInt8(Number(part), 12 + index));
      return record;
    });
    return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
  }
}
