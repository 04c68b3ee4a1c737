import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Chat } from "../src/client/index.js";
import { FakeChatServer, within } from "./client-helpers.js";

// A caller may pass one long-lived AbortSignal to every send (or to many chats): the library must take its
// listener off once it is done with it, or each use keeps a closure (and a send its text) alive as long as the signal.

const chats: Chat[] = [];
afterEach(() => {
  for (const chat of chats.splice(0)) chat.close();
});

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, "abort").length;

describe("client library, listeners on the caller's signals", () => {
  it("1,000 sends with one signal, answered or refused, leave no listener on it", async () => {
    const server = new FakeChatServer();
    const refusing: typeof fetch = async (input, init) => {
      const text = typeof init?.body === "string" ? (JSON.parse(init.body) as { text?: string }).text : undefined;
      if (text?.startsWith("refused")) return new Response(JSON.stringify({ error: { code: "message_too_long", message: "no" } }), { status: 413 });
      return server.fetch(input, init);
    };
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: refusing, stream: false });
    chats.push(chat);
    const controller = new AbortController();
    const sends = Array.from({ length: 1000 }, (_, i) => chat.send(i % 10 === 9 ? `refused ${i}` : `m${i}`, { signal: controller.signal }));
    const results = await within(Promise.allSettled(sends), 8000, "1,000 sends");
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(900);
    expect(results.filter((r) => r.status === "rejected").length).toBe(100);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("sends rejected by close() leave no listener on their signal", async () => {
    const server = new FakeChatServer((r) => r.path === "/api/messages");
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: server.fetch, stream: false, requestTimeoutMs: 60_000 });
    chats.push(chat);
    const controller = new AbortController();
    const sends = [chat.send("a", { signal: controller.signal }), chat.send("b", { signal: controller.signal })];
    await server.seen("/api/messages", 1);
    expect(abortListeners(controller.signal)).toBe(2);
    chat.close();
    const results = await within(Promise.allSettled(sends), 2000, "the closed sends");
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(abortListeners(controller.signal)).toBe(0);
  });

  it("the connect signal: one listener while the chat is open (its joins add none), none once it is closed", async () => {
    const server = new FakeChatServer();
    // As Node's fetch does: a listener on the request's signal, gone only when the request is collected.
    const listening: typeof fetch = (input, init) => {
      init?.signal?.addEventListener("abort", () => undefined);
      return server.fetch(input, init);
    };
    const controller = new AbortController();
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: listening, stream: false, signal: controller.signal });
    chats.push(chat);
    await chat.join("dev");
    expect(abortListeners(controller.signal)).toBe(1);
    chat.close();
    expect(abortListeners(controller.signal)).toBe(0);
    // Aborting it later finds nothing to do.
    controller.abort();
    expect(chat.state).toBe("closed");
  });
});
