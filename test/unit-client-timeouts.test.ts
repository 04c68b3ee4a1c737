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

  it("a re-join that never answers times out, and receiving and sending carry on", async () => {
    // After the 401, the first re-join (the second join) hangs.
    const server = new FakeChatServer((r, nth) => r.path === "/api/join" && nth === 2);
    const chat = await chatOn(server, { requestTimeoutMs: 200 });
    const recorder = new Recorder(chat);
    server.forgotten.add("session1");
    // The post gets the 401 at once, the receiver with its next poll (each is held 1 s).
    const sent = chat.send("after the re-join");
    await recorder.until(() => chat.token === "session3" && chat.state === "connected", "a third join, connected", 8000);
    await expect(within(sent, 4000, "the send")).resolves.toBeTypeOf("number");
    expect(server.to("/api/join")[1]!.signal?.aborted).toBe(true);
  });

  it("a connect whose join never answers rejects with a timeout", async () => {
    const server = new FakeChatServer((r) => r.path === "/api/join");
    const connecting = connect("http://chat.invalid", { name: "dora", fetch: server.fetch, requestTimeoutMs: 200 });
    await expect(within(connecting, 4000, "connect")).rejects.toMatchObject({ status: 0, code: "timeout" });
  });
});
