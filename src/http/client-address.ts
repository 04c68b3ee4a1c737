import type { IncomingMessage } from "node:http";
import { isIP, isIPv4 } from "node:net";
import { addressKey } from "../address-key.js";

export { addressKey };

/**
 * Who a request comes from, as the per-address limits count it (spec §8).
 * Behind a reverse proxy (`--trust-proxy`) that is the rightmost
 * X-Forwarded-For hop: the address the proxy itself saw. Hops further left
 * were written by the client and prove nothing. Without --trust-proxy the
 * header is ignored: anyone can send it.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const hop = rightmostForwardedHop(req.headers["x-forwarded-for"]);
    if (hop !== undefined) return addressKey(hop);
  }
  return addressKey(req.socket.remoteAddress ?? "");
}

/** The last address in X-Forwarded-For (repeated headers read as one list), without a port; undefined if it is none. */
export function rightmostForwardedHop(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const list = Array.isArray(header) ? header.join(",") : header;
  const hop = list.slice(list.lastIndexOf(",") + 1).trim();
  if (isIP(hop) !== 0) return hop;
  // Some proxies add the client's port: "203.0.113.9:41234", "[2001:db8::1]:41234".
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(hop);
  if (bracketed && isIP(bracketed[1]!) === 6) return bracketed[1];
  const withPort = /^([\d.]+):\d{1,5}$/.exec(hop);
  if (withPort && isIPv4(withPort[1]!)) return withPort[1];
  return undefined;
}
