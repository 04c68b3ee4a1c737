import { isIP, isIPv4 } from "node:net";

/**
 * One client, one key: `::ffff:a.b.c.d` is the IPv4 client `a.b.c.d`, and an
 * IPv6 client is its /64 (one subscriber's network: it has 2^64 addresses to
 * pick from, so counting single addresses would count nothing).
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, "").toLowerCase(); // a zone (fe80::1%eth0) names our interface, not the client
  if (isIPv4(plain)) return plain;
  if (isIP(plain) !== 6) return plain;
  const groups = ipv6Groups(plain);
  // ::ffff:0:0/96 holds IPv4 clients of a dual-stack socket.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail read as two groups). */
function ipv6Groups(address: string): number[] {
  const toGroups = (part: string): number[] => {
    if (part === "") return [];
    const out: number[] = [];
    for (const piece of part.split(":")) {
      if (piece.includes(".")) {
        const [a, b, c, d] = piece.split(".").map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const gap = address.indexOf("::");
  if (gap === -1) return toGroups(address);
  const head = toGroups(address.slice(0, gap));
  const tail = toGroups(address.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
