import { afterEach, describe, expect, it } from "vitest";
import { connect, type Chat } from "../src/client/index.js";
import { describeRequest, heldPoll, jsonResponse, Recorder, within, type SeenRequest } from "./client-helpers.js";

// The client library against a scripted fetch: what it sends, for what the real server cannot show yet
// (a JWT) or only slowly (a 429's Retry-After).

const chats: Chat[] = [];
afterEach(() => {
  for (const chat of chats.splice(0)) chat.close();
});

describe("client library, unit", () => {
  it("joins with { jwt } in the body, and after a 401 joins again with the JWT", async () => {
    const seen: SeenRequest[] = [];
    let joins = 0;
    let polls = 0;
    const fake: typeof fetch = async (input, init) => {
      const request = describeRequest(input as string, init);
      seen.push(request);
      if (request.path === "/api/join") {
        joins++;
        return jsonResponse(200, { token: `session${joins}`, name: "carol", room: "ops", cursor: 5, members: ["carol"] });
      }
      if (request.path.startsWith("/api/poll")) {
        // The first session is forgotten at once; the second one is fine.
        if (++polls === 1) return jsonResponse(401, { error: { code: "unauthorized", message: "no such session" } });
        return heldPoll(init, 50, 5);
      }
      return jsonResponse(404, { error: { code: "not_found", message: "no" } });
    };
    const chat = await connect("http://chat.invalid/", { jwt: "h.p.s", room: "ops", fetch: fake, stream: false });
    chats.push(chat);
    const recorder = new Recorder(chat);
    expect(chat.name).toBe("carol");
    await recorder.until(() => joins === 2 && chat.state === "connected", "a second join");
    const joinRequests = seen.filter((r) => r.path === "/api/join");
    for (const join of joinRequests) {
      expect(join).toMatchObject({ method: "POST", body: { jwt: "h.p.s", room: "ops" } });
      // A JWT join stands on the JWT alone, not on a session token that may be stale.
      expect(join.headers.get("authorization")).toBeNull();
    }
    const lastPoll = seen.filter((r) => r.path.startsWith("/api/poll")).at(-1)!;
    expect(lastPoll.headers.get("authorization")).toBe("Bearer session2");
    expect(lastPoll.path).toContain("cursor=5");
    expect(chat.token).toBe("session2");
  });

  it("honours a 429's Retry-After, and sends again with the same txn", async () => {
    const posts: { at: number; body: unknown }[] = [];
    const fake: typeof fetch = async (input, init) => {
      const request = describeRequest(input as string, init);
      if (request.path === "/api/join") return jsonResponse(200, { token: "t", name: "dora", room: "lobby", cursor: 1, members: [] });
      if (request.path.startsWith("/api/poll")) return heldPoll(init, 5000, 1);
      posts.push({ at: performance.now(), body: request.body });
      if (posts.length === 1) return jsonResponse(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "1" });
      return jsonResponse(201, { id: 42 });
    };
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: fake, stream: false, maxBackoffMs: 50 });
    chats.push(chat);
    await expect(chat.send("hello")).resolves.toBe(42);
    expect(posts.length).toBe(2);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(990);
    const [first, second] = posts.map((p) => p.body as { txn: string; text: string });
    expect(second!.txn).toBe(first!.txn);
    expect(second!.text).toBe("hello");
  });

  it("rejects a send the server refuses (4xx) at once, and keeps sending the next", async () => {
    let posts = 0;
    const fake: typeof fetch = async (input, init) => {
      const request = describeRequest(input as string, init);
      if (request.path === "/api/join") return jsonResponse(200, { token: "t", name: "dora", room: "lobby", cursor: 1, members: [] });
      if (request.path.startsWith("/api/poll")) return heldPoll(init, 5000, 1);
      posts++;
      if ((request.body as { text: string }).text === "x".repeat(3000)) return jsonResponse(413, { error: { code: "message_too_long", message: "too long" } });
      return jsonResponse(201, { id: 7 });
    };
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: fake, stream: false });
    chats.push(chat);
    const tooLong = chat.send("x".repeat(3000));
    const fine = chat.send("fine");
    await expect(tooLong).rejects.toMatchObject({ status: 413, code: "message_too_long" });
    await expect(fine).resolves.toBe(7);
    expect(posts).toBe(2);
  });

  it("follows a join's `next` through the member pages, each from the last name, and stops at a page that does not move on", async () => {
    const paths: string[] = [];
    const pages = new Map<string, unknown>([
      ["after=b", { name: "big", members: ["Carl", "dora"], next: "dora" }],
      ["after=dora", { name: "big", members: ["erin"], next: "erin" }],
      ["after=erin", { name: "big", members: ["fay"] }],
      // A server that repeats itself: its `next` goes back, and the walk ends there.
      ["loop", { name: "loop", members: ["x", "y"], next: "y" }],
      ["loop-after=y", { name: "loop", members: ["z"], next: "a" }],
    ]);
    const fake: typeof fetch = async (input, init) => {
      const request = describeRequest(input as string, init);
      paths.push(request.path);
      if (request.path === "/api/join") {
        const room = (request.body as { room?: string }).room ?? "lobby";
        if (room === "big") return jsonResponse(200, { token: "t", name: "dora", room: "big", cursor: 1, members: ["alma", "b"], next: "b" });
        return jsonResponse(200, { token: "t", name: "dora", room, cursor: 1, members: ["dora"] });
      }
      if (request.path.startsWith("/api/poll")) return heldPoll(init, 5000, 1);
      const url = new URL(request.path, "http://chat.invalid");
      const after = url.searchParams.get("after");
      const key = url.pathname === "/api/rooms/loop" ? (after === null ? "loop" : `loop-after=${after}`) : `after=${after}`;
      expect(url.searchParams.get("limit")).toBe("1000");
      return pages.has(key) ? jsonResponse(200, pages.get(key)) : jsonResponse(404, { error: { code: "unknown_room", message: "no" } });
    };
    const chat = await connect("http://chat.invalid", { name: "dora", fetch: fake, stream: false });
    chats.push(chat);
    await expect(chat.join("big")).resolves.toEqual({ room: "big", members: ["alma", "b", "Carl", "dora", "erin", "fay"] });
    expect(paths.filter((p) => p.startsWith("/api/rooms/"))).toEqual([
      "/api/rooms/big?limit=1000&after=b",
      "/api/rooms/big?limit=1000&after=dora",
      "/api/rooms/big?limit=1000&after=erin",
    ]);
    await expect(chat.members("loop")).resolves.toEqual({ name: "loop", members: ["x", "y", "z"] });
    expect(paths.filter((p) => p.startsWith("/api/rooms/loop"))).toEqual(["/api/rooms/loop?limit=1000", "/api/rooms/loop?limit=1000&after=y"]);
  });
  it("keeps the newest mark a poll answer carries and sends it with its next poll (--redis: README, the JSON API)", async () => {
    const polls: string[] = [];
    let fifth: () => void = () => {};
    const fivePolls = new Promise<void>((resolve) => (fifth = resolve));
    const fake: typeof fetch = async (input, init) => {
      const request = describeRequest(input as string, init);
      if (request.path === "/api/join") return jsonResponse(200, { token: "t", name: "erin", room: "lobby", cursor: 1, members: [] });
      if (request.path.startsWith("/api/poll")) {
        if (polls.push(request.path) === 5) fifth();
        // The first answers carry marks; a later one carries none (a process without --redis): the last one is kept.
        const mark = polls.length <= 2 ? { mark: `170000000000${polls.length}-0.${"m".repeat(22)}` } : {};
        if (polls.length > 4) return heldPoll(init, 5000, 1);
        return jsonResponse(200, { messages: [], cursor: 1, ...mark });
      }
      return jsonResponse(404, { error: { code: "not_found", message: "no" } });
    };
    const chat = await connect("http://chat.invalid", { name: "erin", fetch: fake, stream: false });
    chats.push(chat);
    await within(fivePolls, 8000, "five polls");
    const marks = polls.map((path) => new URL(path, "http://x").searchParams.get("mark"));
    expect(marks.slice(0, 5)).toEqual([null, `1700000000001-0.${"m".repeat(22)}`, ...Array(3).fill(`1700000000002-0.${"m".repeat(22)}`)]);
  });
});
