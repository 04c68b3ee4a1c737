import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { serverPerTest } from "./helpers.js";
import { get, seedPost, seedUrl } from "./core-helpers.js";
import { scrape, valueOf } from "./ops-helpers.js";

/**
 * Held polls after issue 14: no timer, closure or listener of their own (a
 * HeldPoll in one deadline FIFO per rounded timeout). What must not change:
 * a hold ends at its timeout (spec §1), a poll whose connection died takes
 * nothing with it and is let go at once, and nothing is left behind.
 */
const start = serverPerTest();

async function register(base: string, name: string): Promise<number> {
  const r = await get(seedUrl(base, { name, timeout: 0, cursor: 0 }));
  expect(r.status).toBe(200);
  return Number(r.headers.get("x-cursor"));
}

/** pollchat_open_polls, as /metrics says it. */
async function held(url: string): Promise<number> {
  return valueOf(await scrape(url), "pollchat_open_polls");
}

/** Polls until `check` holds, at most 200 times 10 ms. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never: ${what}`);
}

describe("held polls without a timer each", () => {
  it("polls of different timeouts held together each end at their own timeout, in timeout order", async () => {
    const s = await start({ presenceLimit: 0 }); // no join notices: the polls stay empty
    // 500 ms apart, so no delay of a busy machine between the three requests changes which ends first.
    const timeouts = [1200, 200, 700];
    const cursors = await Promise.all(timeouts.map((_, i) => register(s.url, `t${i}`)));
    const ended: number[] = [];
    const started = performance.now();
    const answers = timeouts.map(async (timeout, i) => {
      const r = await get(seedUrl(s.url, { name: `t${i}`, cursor: cursors[i]!, timeout }));
      ended.push(timeout);
      expect(r.status).toBe(200);
      expect(r.text).toBe("");
      return performance.now() - started;
    });
    const elapsed = await Promise.all(answers);
    expect(ended).toEqual([200, 700, 1200]);
    timeouts.forEach((timeout, i) => {
      expect(elapsed[i]).toBeGreaterThanOrEqual(timeout);
      // The FIFO is swept every 25 ms and a timeout rounds up to 25 ms (unit-poll-deadlines proves ≤ T + 2 ticks);
      // this bound leaves room for a loaded CI machine, and still ends the 200 ms poll before the 1200 ms one.
      expect(elapsed[i]).toBeLessThan(timeout + 800);
    });
    expect(await held(s.url)).toBe(0);
  });

  it("held polls ended every way (a wake, their timeout, a closed connection, a fifth poll) leave nothing held", async () => {
    const s = await start({ pollTimeoutMs: 10_000, presenceLimit: 0 });
    await register(s.url, "poster");
    const names = Array.from({ length: 20 }, (_, i) => `h${i}`);
    const cursors = await Promise.all(names.map((name) => register(s.url, name)));
    // h0-h9 wait for a message; h10-h14 time out; h15-h19 close their connections.
    const woken = names.slice(0, 10).map((name, i) => get(seedUrl(s.url, { name, cursor: cursors[i]!, timeout: 10_000 })));
    // (Long enough that they are still held when the 20 and then the 15 are counted, however busy the machine.)
    const timedOut = names.slice(10, 15).map((name, i) => get(seedUrl(s.url, { name, cursor: cursors[10 + i]!, timeout: 4000 })));
    const sockets = names.slice(15).map((name, i) => {
      const socket = connect(s.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write(`GET /?name=${name}&cursor=${cursors[15 + i]}&timeout=10000 HTTP/1.1\r\nHost: t\r\n\r\n`);
      return socket;
    });
    await until(async () => (await held(s.url)) === 20, "20 polls held");
    for (const socket of sockets) socket.destroy();
    await until(async () => (await held(s.url)) === 15, "closed connections let go");
    for (const name of names.slice(15)) expect(s.chat.hub.session(name)!.presenceHolds).toBe(0);
    expect((await Promise.all(timedOut)).map((r) => r.text)).toEqual(["", "", "", "", ""]);
    await seedPost(s.url, "poster", "wake");
    for (const r of await Promise.all(woken)) expect(r.text).toBe("poster : wake\n");
    // Five polls of one name: the fifth answers the oldest at once.
    const five = Array.from({ length: 5 }, () => get(seedUrl(s.url, { name: "h0", timeout: 10_000 })));
    expect((await Promise.race(five)).status).toBe(200);
    await seedPost(s.url, "poster", "the rest");
    await Promise.all(five);
    await until(async () => (await held(s.url)) === 0, "nothing held");
    for (const name of names) {
      expect(s.chat.hub.session(name)!.heldPolls).toBeUndefined();
      expect(s.chat.hub.session(name)!.presenceHolds).toBe(0);
    }
  }, 20_000);
});

describe("held polls in a host's server (chat.handle mounted)", () => {
  it("outlive the host's own server.timeout: answered at their timeout, not cut; a quiet SSE stream too", async () => {
    const { createServer } = await import("node:http");
    const { createChatServer } = await import("../src/index.js");
    const chat = createChatServer({ presenceLimit: 0, heartbeatMs: 60_000 });
    const host = createServer(chat.handle);
    // The host's idle timeout, shorter than the poll: Node cuts a connection idle that long unless a listener decides.
    host.timeout = 300;
    await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(host.address() as { port: number }).port}`;
    try {
      const cursor = await register(url, "m");
      const started = performance.now();
      const r = await get(seedUrl(url, { name: "m", cursor, timeout: 1200 }));
      expect(r.status).toBe(200);
      expect(r.text).toBe("");
      expect(performance.now() - started).toBeGreaterThanOrEqual(1200);
      // A stream quiet for 3× the host's timeout still delivers.
      const join = await fetch(`${url}/api/join`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"name":"s"}' });
      const { token } = (await join.json()) as { token: string };
      const stream = await fetch(`${url}/api/events`, { headers: { Authorization: `Bearer ${token}` } });
      const reader = stream.body!.getReader();
      await reader.read(); // retry: line
      await new Promise((r2) => setTimeout(r2, 900));
      await seedPost(url, "m", "after the quiet");
      let seen = "";
      const decoder = new TextDecoder();
      for (let i = 0; i < 20 && !seen.includes("after the quiet"); i++) {
        const chunk = await reader.read();
        if (chunk.done) break;
        seen += decoder.decode(chunk.value);
      }
      expect(seen).toContain("after the quiet");
      await reader.cancel();
    } finally {
      await chat.close();
      host.closeAllConnections();
      await new Promise((resolve) => host.close(resolve));
    }
  }, 15_000);

  it("a poll that reaches its handler after shutdown answered the held ones (it awaited the host's login) is answered, not cut", async () => {
    const { createChatServer } = await import("../src/index.js");
    let release: () => void = () => {};
    const slowLogin = new Promise<void>((resolve) => (release = resolve));
    let entered: () => void = () => {};
    const inLogin = new Promise<void>((resolve) => (entered = resolve));
    const chat = createChatServer({
      presenceLimit: 0,
      authenticate: async () => {
        entered();
        await slowLogin;
        return "late";
      },
    });
    const { url } = await chat.listen(0, "127.0.0.1");
    const poll = get(seedUrl(url, { name: "late", timeout: 10_000 }));
    // The request is in the handler, waiting on the login, when shutdown starts.
    await inLogin;
    const closed = chat.close();
    release();
    const r = await poll;
    expect(r.status).toBe(200);
    await closed;
  });
});
