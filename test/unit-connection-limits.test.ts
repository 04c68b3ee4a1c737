import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { connectionLimits } from "../src/ops/connection-limit.js";

/** Just what a ConnectionLimit reads of a socket: its address, "close", destroy(). */
function fakeSocket(remoteAddress: string): Socket {
  const socket = new EventEmitter() as EventEmitter & { remoteAddress: string; destroy(): void };
  socket.remoteAddress = remoteAddress;
  socket.destroy = () => void socket.emit("close");
  return socket as unknown as Socket;
}

describe("connectionLimits", () => {
  it("caps HTTP and TCP per address, each counted on its own", () => {
    const limits = connectionLimits({ maxConnectionsPerIp: 2, trustProxy: false });
    const http = [1, 2, 3].map(() => fakeSocket("10.0.0.1"));
    expect(http.map((s) => limits.http.admit(s))).toEqual([true, true, false]);
    expect(limits.http.refuses(http[2]!)).toBe(true);
    // TCP connections from the same address are not counted against HTTP's cap.
    expect([1, 2, 3].map(() => limits.tcp.admit(fakeSocket("10.0.0.1")))).toEqual([true, true, false]);
    http[0]!.emit("close");
    expect(limits.http.count("10.0.0.1")).toBe(2);
    expect(limits.tcp.count("10.0.0.1")).toBe(3);
    for (const s of http) s.emit("close");
  });

  it("turns the HTTP cap off behind a proxy (--trust-proxy) and keeps the TCP cap", () => {
    const limits = connectionLimits({ maxConnectionsPerIp: 1, trustProxy: true });
    const http = [1, 2, 3].map(() => fakeSocket("10.0.0.9"));
    expect(http.map((s) => limits.http.admit(s))).toEqual([true, true, true]);
    const tcp = [1, 2].map(() => fakeSocket("10.0.0.9"));
    expect(tcp.map((s) => limits.tcp.admit(s))).toEqual([true, false]);
    for (const s of [...http, ...tcp]) s.emit("close");
    expect(limits.http.total + limits.tcp.total).toBe(0);
  });

  it("0 means no cap", () => {
    const limits = connectionLimits({ maxConnectionsPerIp: 0, trustProxy: false });
    expect([1, 2, 3].every(() => limits.tcp.admit(fakeSocket("10.0.0.3")))).toBe(true);
  });
});
