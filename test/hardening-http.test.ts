import { connect } from "node:net";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Logger, LogFields } from "../src/index.js";
import { parseTimeout } from "../src/validate.js";
import { joinApi, serverPerTest } from "./helpers.js";
import { apiPoll, get, nextRequest, rawRequest, seedPost, seedUrl, statusOf } from "./core-helpers.js";

/** Issue 10, "smaller, also fix": negative timeouts, HEAD and absolute-form targets, aborted uploads, symlinks under public/. */

const start = serverPerTest();

/** The answers in a raw byte stream of HTTP/1.1 responses, split at each status line. */
function answers(raw: string): string[] {
  return raw.split(/(?=HTTP\/1\.1 \d{3} )/).filter((a) => a.length > 0);
}

function header(answer: string, name: string): string | undefined {
  const match = new RegExp(`^${name}: (.*)$`, "im").exec(answer.split("\r\n\r\n")[0]!);
  return match?.[1]?.trim();
}

describe("timeout", () => {
  it("clamps a negative timeout to 0 (answer at once) instead of refusing it", async () => {
    const s = await start({ pollTimeoutMs: 5000 });
    await seedPost(s.url, "bob", "hello");
    const first = await get(seedUrl(s.url, { name: "bob", timeout: -50 }));
    expect(first.status).toBe(200);
    expect(first.text).toBe("* bob joined lobby\nbob : hello\n");
    // Nothing queued now: a hold would last the default 5 s; timeout=-50 is timeout=0.
    const started = Date.now();
    const empty = await get(seedUrl(s.url, { name: "bob", timeout: -50 }));
    expect(empty.status).toBe(200);
    expect(empty.text).toBe("");
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("parseTimeout: any negative whole number is 0; what is not a whole number is still refused", () => {
    expect(parseTimeout("-50", 4500, 30_000)).toBe(0);
    expect(parseTimeout("-1", 4500, 30_000)).toBe(0);
    expect(parseTimeout("-99999999999999999999", 4500, 30_000)).toBe(0);
    for (const bad of ["-", "--1", "-1.5", "- 1"]) expect(() => parseTimeout(bad, 4500, 30_000), bad).toThrow(/whole number/);
  });
});

describe("HEAD /?name=N", () => {
  it("answers the GET's headers without a body, making no session", async () => {
    const s = await start();
    const raw = await rawRequest(s.port, "HEAD /?name=ghost HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(raw)).toBe(200);
    expect(header(raw, "content-type")).toBe("text/plain; charset=utf-8");
    expect(header(raw, "cache-control")).toBe("no-store");
    expect(header(raw, "x-cursor")).toMatch(/^\d+$/);
    expect(raw.split("\r\n\r\n")[1]).toBe("");
    expect(s.chat.hub.session("ghost")).toBeUndefined();
    expect(s.chat.hub.sessionCount).toBe(0);
  });

  it("consumes nothing and holds nothing: a GET pipelined after it on the same connection gets the messages", async () => {
    const s = await start({ pollTimeoutMs: 5000 });
    await seedPost(s.url, "bob", "one");
    const started = Date.now();
    const raw = await rawRequest(
      s.port,
      "HEAD /?name=bob HTTP/1.1\r\nHost: x\r\n\r\n" + "HEAD /?name=bob&format=json HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /?name=bob HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const [head, headJson, getAnswer] = answers(raw);
    expect(statusOf(head!)).toBe(200);
    expect(head!.split("\r\n\r\n")[1]).toBe("");
    expect(header(headJson!, "content-type")).toBe("application/json; charset=utf-8");
    expect(statusOf(getAnswer!)).toBe(200);
    expect(getAnswer!.split("\r\n\r\n")[1]).toBe("* bob joined lobby\nbob : one\n");
    // Neither HEAD was held for the 5 s a GET with nothing new would wait.
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("does not post: a HEAD with message= answers 405 with Allow: GET", async () => {
    const s = await start();
    const alice = await joinApi(s.url, "alice");
    const raw = await rawRequest(s.port, "HEAD /?name=bob&message=hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(raw)).toBe(405);
    expect(header(raw, "allow")).toBe("GET");
    expect(s.chat.hub.session("bob")).toBeUndefined();
    expect((await apiPoll(s.url, alice.auth, { cursor: alice.cursor, timeout: 0 })).messages.map((m) => m.type)).toEqual(["join"]);
  });

  it("refuses a claimed name without its token, as the GET does", async () => {
    const s = await start();
    await joinApi(s.url, "dave");
    const raw = await rawRequest(s.port, "HEAD /?name=dave HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(statusOf(raw)).toBe(401);
  });
});

describe("absolute-form request targets (what a proxy sends)", () => {
  it("are served as their origin form: seed post and poll, the JSON API, the page", async () => {
    const s = await start();
    const origin = `http://127.0.0.1:${s.port}`;
    const posted = await rawRequest(s.port, `GET ${origin}/?name=bob&message=hi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(statusOf(posted)).toBe(200);
    expect(posted.split("\r\n\r\n")[1]).toMatch(/^ok \d+\n$/);
    const polled = await rawRequest(s.port, `GET ${origin}/?name=bob&timeout=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(polled.split("\r\n\r\n")[1]).toBe("* bob joined lobby\nbob : hi\n");
    const rooms = await rawRequest(s.port, `GET ${origin}/api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(statusOf(rooms)).toBe(200);
    expect(header(rooms, "content-type")).toBe("application/json; charset=utf-8");
    const page = await rawRequest(s.port, `GET HTTP://127.0.0.1:${s.port} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    expect(statusOf(page)).toBe(200);
    expect(header(page, "content-type")).toBe("text/html; charset=utf-8");
  });
});

describe("an aborted upload", () => {
  it("is not logged as a server error, and is counted as aborted", async () => {
    const errors: string[] = [];
    const record =
      (level: string) =>
      (event: string, fields?: LogFields): void => {
        if (level === "error" || level === "warn") errors.push(`${event} ${JSON.stringify(fields)}`);
      };
    const logger: Logger = {
      error: record("error"),
      warn: record("warn"),
      info: record("info"),
      debug: record("debug"),
      enabled: () => true,
      flush: () => Promise.resolve(),
    };
    const s = await start({ logger });
    for (let i = 0; i < 3; i++) {
      const handling = nextRequest(s);
      const socket = connect(s.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write('POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na');
      // Gone mid-body, once the server is reading it.
      await handling;
      socket.destroy();
    }
    const deadline = Date.now() + 5000;
    let metrics = "";
    while (Date.now() < deadline) {
      metrics = await (await fetch(`${s.url}/metrics`)).text();
      if (/pollchat_http_requests_total\{route="api_join",status="aborted"\} 3/.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(metrics).toMatch(/pollchat_http_requests_total\{route="api_join",status="aborted"\} 3/);
    // One more request through the server: whatever the aborts were going to log is logged by now.
    expect((await get(`${s.url}/healthz`)).status).toBe(200);
    expect(errors).toEqual([]);
  });
});

describe("symlinks under public/", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("are not followed outside it; inside it they work", async () => {
    dir = await mkdtemp(join(tmpdir(), "pollchat-hardening-http-"));
    const publicDir = join(dir, "public");
    const outside = join(dir, "outside");
    await mkdir(publicDir);
    await mkdir(outside);
    await writeFile(join(publicDir, "index.html"), "<p>page</p>");
    await writeFile(join(publicDir, "real.txt"), "inside");
    await writeFile(join(outside, "secret.txt"), "the secret");
    await symlink(join(outside, "secret.txt"), join(publicDir, "leak.txt"));
    await symlink(outside, join(publicDir, "linked"));
    await symlink(join(publicDir, "real.txt"), join(publicDir, "alias.txt"));
    const s = await start({ publicDir });

    for (const path of ["/leak.txt", "/linked/secret.txt"]) {
      const r = await get(`${s.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.text, path).not.toContain("the secret");
    }
    const alias = await get(`${s.url}/alias.txt`);
    expect(alias.status).toBe(200);
    expect(alias.text).toBe("inside");
    expect((await get(`${s.url}/`)).text).toBe("<p>page</p>");
  });
});
