import { afterEach, describe, expect, it } from "vitest";
import { connect, type Chat, type ConnectOptions } from "../src/client/index.js";
import { FakeChatServer, Recorder, within } from "./client-helpers.js";

// A request that never answers (a half-open connection: in a browser fetch never gives up) must not hold up
// the client: each post and join has its own timeout, and retryNow() and close() cut one short.

const chats: Chat[] = [];
afterEach(() => {
  for (const chat of chats.splice(0)) chat.close();
});

async function chatOn(server: FakeChatServer, options: ConnectOptions = {}): Promise<Chat> {
  const chat = await connect("http://chat.invalid", { name: "dora", fetch: server.fetch, stream: false, maxBackoffMs: 50, ...options });
  chats.push(chat);
  return chat;
}

const firstPostHangs = (r: { path: string }, nth: number): boolean => r.path === "/api/messages" && nth === 1;

describe("client library, requests that never answer", () => {
  it("a post that never answers times out and goes again with the same txn; the send after it is not held up", async () => {
    const server = new FakeChatServer(firstPostHangs);
    const chat = await chatOn(server, { requestTimeoutMs: 200 });
    const [a, b] = await within(Promise.all([chat.send("a"), chat.send("b")]), 4000, 'send("a") and send("b")');
    expect(a).not.toBe(b);
    const posts = server.to("/api/messages");
    expect(posts.map((p) => (p.body as { text: string }).text)).toEqual(["a", "a", "b"]);
    const [hung, retried] = posts.map((p) => (p.body as { txn: string }).txn);
    // The same txn: had the hung attempt reached the server, the retry gets its id and posts nothing.
    expect(retried).toBe(hung);
    // The hung attempt was given up, not left running.
    expect(posts[0]!.signal?.aborted).toBe(true);
  });

  it("retryNow() cuts a hung post short: it goes again at once, same txn", async () => {
    const server = new FakeChatServer(firstPostHangs);
    const chat = await chatOn(server, { requestTimeoutMs: 60_000 });
    const sent = chat.send("a");
    await server.seen("/api/messages", 1);
    chat.retryNow();
    await expect(within(sent, 2000, 'send("a")')).resolves.toBe(2);
    const posts = server.to("/api/messages");
    expect(posts.length).toBe(2);
    expect(posts[0]!.signal?.aborted).toBe(true);
    expect((posts[1]!.body as { txn: string }).txn).toBe((posts[0]!.body as { txn: string }).txn);
  });

  it("close() aborts a hung post and rejects its send", async () => {
    const server = new FakeChatServer(firstPostHangs);
    const chat = await chatOn(server, { requestTimeoutMs: 60_000 });
    const sent = chat.send("a");
    await server.seen("/api/messages", 1);
    chat.close();
    await expect(within(sent, 2000, 'send("a")')).rejects.toMatchObject({ code: "closed" });
    expect(server.to("/api/messages")[0]!.signal?.aborted).toBe(true);
  });

  it("aborting the send of a hung post rejects it at once; the next send goes when that attempt times out", async () => {
    const server = new FakeChatServer(firstPostHangs);
    const chat = await chatOn(server, { requestTimeoutMs: 300 });
    const controller = new AbortController();
    const first = chat.send("a", { signal: controller.signal });
    const second = chat.send("b");
    await server.seen("/api/messages", 1);
    controller.abort();
    await expect(within(first, 100, 'send("a")')).rejects.toMatchObject({ code: "aborted" });
    await expect(within(second, 2000, 'send("b")')).resolves.toBeTypeOf("number");
    // "a" was not tried again: only "b" after it.
    expect(server.to("/api/messages").map((p) => (p.body as { text: string }).text)).toEqual(["a", "b"]);
  });
});
