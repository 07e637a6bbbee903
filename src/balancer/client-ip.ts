/** The client's address as X-Forwarded-For gives it: an IPv4-mapped IPv6 address as plain IPv4. */
export function clientIp(from: { readonly socket: { readonly remoteAddress?: string | undefined } }): string {
  const ip = from.socket.remoteAddress ?? "unknown";
  return ip.startsWith("::ffff:") ? ip.slice(7) : ip;
}
