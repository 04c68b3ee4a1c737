import { once } from "node:events";
import { connect } from "node:net";
import type { IncomingMessage } from "node:http";
import type { ChatMessage } from "../src/index.js";
import type { TestServer } from "./helpers.js";

/** Helpers shared by the core-*.test.ts files (the generic ones live in helpers.ts). */

export interface TextAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<TextAnswer> {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Builds `/?name=...&k=v` with every value percent-encoded. */
export function seedUrl(base: string, params: Record<string, string | number>): string {
  const qs = Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join("&");
  return `${base}/?${qs}`;
}

/** Posts through the seed endpoint; returns the id from `ok <id>`. */
export async function seedPost(base: string, name: string, message: string, extra: Record<string, string> = {}): Promise<number> {
  const r = await get(seedUrl(base, { name, message, ...extra }));
  const match = /^ok (\d+)\n$/.exec(r.text);
  if (r.status !== 200 || !match) throw new Error(`post as ${name}: ${r.status} ${r.text}`);
  return Number(match[1]);
}

export interface JsonPoll {
  status: number;
  headers: Headers;
  messages: ChatMessage[];
  cursor: number;
}

/** A seed poll answered as JSON (format=json). */
export async function seedPollJson(base: string, name: string, params: Record<string, string | number> = {}): Promise<JsonPoll> {
  const res = await fetch(seedUrl(base, { name, format: "json", ...params }));
  const body = (await res.json()) as { messages: ChatMessage[]; cursor: number };
  return { status: res.status, headers: res.headers, messages: body.messages, cursor: body.cursor };
}

/** A poll of the JSON API with a token. */
export async function apiPoll(base: string, auth: Record<string, string>, params: Record<string, string | number> = {}): Promise<JsonPoll> {
  const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
  const res = await fetch(`${base}/api/poll${qs ? `?${qs}` : ""}`, { headers: auth });
  const body = (await res.json()) as { messages: ChatMessage[]; cursor: number };
  return { status: res.status, headers: res.headers, messages: body.messages, cursor: body.cursor };
}

/**
 * Resolves once the server has dispatched its next request. The server's own
 * handler is the first "request" listener, so by then a poll is already held.
 */
export function nextRequest(server: TestServer): Promise<[IncomingMessage, import("node:http").ServerResponse]> {
  return once(server.chat.server, "request") as Promise<[IncomingMessage, import("node:http").ServerResponse]>;
}

/**
 * Sends raw bytes over node:net (no client-side URL normalisation) and
 * resolves with everything the server wrote until it closed the connection.
 */
export function rawRequest(port: number, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw request got no close within ${timeoutMs} ms: ${Buffer.concat(chunks).toString()}`));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.write(request);
  });
}

/** The status code of a raw HTTP/1.1 answer. */
export function statusOf(raw: string): number {
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(raw);
  return match ? Number(match[1]) : 0;
}

/** Keys of Object.prototype and friends, to prove nothing was polluted. */
export function prototypeSnapshot(): string {
  return JSON.stringify([
    Object.getOwnPropertyNames(Object.prototype).sort(),
    Object.getOwnPropertyNames(Array.prototype).sort(),
    Object.getOwnPropertyNames(Function.prototype).sort(),
  ]);
}
