import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { addressKey, clientAddress, rightmostForwardedHop } from "../src/http/client-address.js";

/** Who a request is for the per-address limits (spec §8): normalised keys, and X-Forwarded-For only behind a proxy. */

function request(remoteAddress: string, headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

describe("addressKey", () => {
  it("keeps an IPv4 address as it is, and reads ::ffff:a.b.c.d as a.b.c.d", () => {
    expect(addressKey("203.0.113.9")).toBe("203.0.113.9");
    expect(addressKey("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(addressKey("::FFFF:203.0.113.9")).toBe("203.0.113.9");
    expect(addressKey("0:0:0:0:0:ffff:cb00:7109")).toBe("203.0.113.9");
  });

  it("counts an IPv6 client per /64, however the address is written", () => {
    const key = "2001:db8:1:2::/64";
    expect(addressKey("2001:db8:1:2::1")).toBe(key);
    expect(addressKey("2001:0db8:0001:0002:ffff:ffff:ffff:ffff")).toBe(key);
    expect(addressKey("2001:DB8:1:2:0:0:0:9")).toBe(key);
    expect(addressKey("2001:db8:1:2::1%eth0")).toBe(key);
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
  });

  it("leaves anything else as it is", () => {
    expect(addressKey("")).toBe("");
  });
});

describe("rightmostForwardedHop", () => {
  it("takes the last hop, which the proxy wrote; the ones before are the client's word", () => {
    expect(rightmostForwardedHop("198.51.100.1, 203.0.113.9")).toBe("203.0.113.9");
    expect(rightmostForwardedHop(" 203.0.113.9 ")).toBe("203.0.113.9");
    expect(rightmostForwardedHop(["198.51.100.1", "203.0.113.9"])).toBe("203.0.113.9");
    expect(rightmostForwardedHop("203.0.113.9:41234")).toBe("203.0.113.9");
    expect(rightmostForwardedHop("[2001:db8::1]:443")).toBe("2001:db8::1");
    expect(rightmostForwardedHop("2001:db8::1")).toBe("2001:db8::1");
  });

  it("is undefined for no header or a hop that is no address", () => {
    expect(rightmostForwardedHop(undefined)).toBeUndefined();
    expect(rightmostForwardedHop("")).toBeUndefined();
    expect(rightmostForwardedHop("203.0.113.9, unknown")).toBeUndefined();
    expect(rightmostForwardedHop("203.0.113.9,")).toBeUndefined();
  });
});

describe("clientAddress", () => {
  it("ignores X-Forwarded-For without --trust-proxy", () => {
    expect(clientAddress(request("::ffff:127.0.0.1", { "x-forwarded-for": "203.0.113.9" }), false)).toBe("127.0.0.1");
  });

  it("uses the rightmost hop with --trust-proxy, and the socket's address when there is none", () => {
    expect(clientAddress(request("10.0.0.2", { "x-forwarded-for": "1.2.3.4, 2001:db8:1:2::7" }), true)).toBe("2001:db8:1:2::/64");
    expect(clientAddress(request("10.0.0.2"), true)).toBe("10.0.0.2");
    expect(clientAddress(request("10.0.0.2", { "x-forwarded-for": "garbage" }), true)).toBe("10.0.0.2");
  });
});
