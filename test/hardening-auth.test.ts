import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Envelope } from "../src/message.js";
import { sameToken } from "../src/same-token.js";
import { joinApi, postJson, serverPerTest, startServer, type TestServer } from "./helpers.js";
import { apiPoll, get, seedUrl } from "./core-helpers.js";

/**
 * Issue 10, "who may speak": side effects from the cookie alone (item 12, spec §4),
 * control characters that spoof a sender on a terminal (item 11, spec §3, over HTTP),
 * names restored without a token under --require-token (item 10), constant-time token checks.
 */

const start = serverPerTest();

/** The `name=value` part of a join's Set-Cookie: what a browser sends back. */
async function joinWithCookie(url: string, name: string): Promise<{ cookie: string; token: string; setCookie: string }> {
  const r = await postJson(`${url}/api/join`, { name });
  expect(r.status).toBe(200);
  const setCookie = r.headers.get("set-cookie")!;
  return { cookie: setCookie.split(";")[0]!, token: r.body.token, setCookie };
}

async function post(url: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe("the cookie alone authorises reads and JSON requests, never a state change by GET or a non-JSON body (§4)", () => {
  it("refuses a seed GET that posts as a claimed name with only the cookie (401), and posts with Authorization", async () => {
    const s = await start();
    const dave = await joinWithCookie(s.url, "dave");
    const watcher = await joinApi(s.url, "watcher");
    const before = (await apiPoll(s.url, watcher.auth, { cursor: watcher.cursor, timeout: 0 })).cursor;

    const forged = await get(seedUrl(s.url, { name: "dave", message: "sent by a link on another page" }), { cookie: dave.cookie });
    expect(forged.status).toBe(401);
    expect(forged.text).toMatch(/^error unauthorized: /);
    // Nothing was posted.
    expect((await apiPoll(s.url, watcher.auth, { cursor: before, timeout: 0 })).messages).toEqual([]);

    const real = await get(seedUrl(s.url, { name: "dave", message: "mine" }), { authorization: `Bearer ${dave.token}` });
    expect(real.status).toBe(200);
    expect(real.text).toMatch(/^ok \d+\n$/);
    const seen = await apiPoll(s.url, watcher.auth, { cursor: before, timeout: 0 });
    expect(seen.messages.map((m) => m.text)).toEqual(["mine"]);
  });

  it("refuses a seed GET that joins a room as a claimed name with only the cookie, and still polls with it", async () => {
    const s = await start();
    const dave = await joinWithCookie(s.url, "dave");
    const join = await get(seedUrl(s.url, { name: "dave", room: "elsewhere", timeout: 0 }), { cookie: dave.cookie });
    expect(join.status).toBe(401);
    expect(s.chat.hub.session("dave")!.rooms.has("elsewhere")).toBe(false);
    expect(s.chat.hub.room("elsewhere")).toBeUndefined();
    // A poll that changes nothing reads with the cookie, as before.
    const poll = await get(seedUrl(s.url, { name: "dave", timeout: 0 }), { cookie: dave.cookie });
    expect(poll.status).toBe(200);
    expect(poll.text).toBe("* dave joined lobby\n");
  });

  it("refuses an empty non-JSON POST /api/leave with only the cookie (415), and the session lives on", async () => {
    const s = await start();
    const dave = await joinWithCookie(s.url, "dave");
    const attempts: Record<string, string>[] = [{ cookie: dave.cookie, "content-type": "text/plain" }, { cookie: dave.cookie }];
    for (const headers of attempts) {
      const r = await post(`${s.url}/api/leave`, headers);
      expect(r.status, JSON.stringify(headers)).toBe(415);
      expect(r.body.error.code).toBe("unsupported_media_type");
    }
    const form = await post(`${s.url}/api/messages`, { cookie: dave.cookie, "content-type": "application/x-www-form-urlencoded" }, "text=hi");
    expect(form.status).toBe(415);
    expect(s.chat.hub.session("dave")?.ended).toBe(false);
    expect(s.chat.hub.session("dave")!.rooms.has("lobby")).toBe(true);

    // Declared JSON, the cookie is enough, even with an empty body.
    const json = await post(`${s.url}/api/leave`, { cookie: dave.cookie, "content-type": "application/json" });
    expect(json.status).toBe(200);
    expect(s.chat.hub.session("dave")).toBeUndefined();
  });

  it("lets Authorization change state whatever the body's type", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    const r = await post(`${s.url}/api/leave`, { ...dave.auth, "content-type": "text/plain" });
    expect(r.status).toBe(200);
    expect(s.chat.hub.session("dave")).toBeUndefined();
  });
});

describe("the token cookie is Secure when the client came over TLS", () => {
  it("is not Secure over plain HTTP, nor for an X-Forwarded-Proto nobody vouches for", async () => {
    const s = await start();
    const plain = await postJson(`${s.url}/api/join`, { name: "plain" });
    expect(plain.headers.get("set-cookie")).not.toMatch(/Secure/i);
    const claimed = await postJson(`${s.url}/api/join`, { name: "claimed" }, { "x-forwarded-proto": "https" });
    expect(claimed.headers.get("set-cookie")).not.toMatch(/Secure/i);
  });

  it("is Secure with --trust-proxy and X-Forwarded-Proto: https (the proxy's own, rightmost value), on join and on leave", async () => {
    const s = await start({ trustProxy: true });
    const https = await postJson(`${s.url}/api/join`, { name: "viaproxy" }, { "x-forwarded-proto": "https" });
    expect(https.headers.get("set-cookie")).toMatch(/; Secure/);
    const left = await postJson(`${s.url}/api/leave`, {}, { authorization: `Bearer ${https.body.token}`, "x-forwarded-proto": "https" });
    expect(left.status).toBe(200);
    expect(left.headers.get("set-cookie")).toMatch(/Max-Age=0/);
    expect(left.headers.get("set-cookie")).toMatch(/; Secure/);
    // The client wrote "https", the proxy appended what it saw: plain http.
    const spoofed = await postJson(`${s.url}/api/join`, { name: "spoofed" }, { "x-forwarded-proto": "https, http" });
    expect(spoofed.headers.get("set-cookie")).not.toMatch(/Secure/i);
  });

  it("is Secure when the handler is mounted in an https server", async () => {
    const s = await start();
    const tls = createHttpsServer({ key: TEST_KEY, cert: TEST_CERT }, s.chat.handle);
    tls.listen(0, "127.0.0.1");
    await once(tls, "listening");
    try {
      const { port } = tls.address() as AddressInfo;
      const body = JSON.stringify({ name: "tls" });
      const req = httpsRequest({ host: "127.0.0.1", port, path: "/api/join", method: "POST", rejectUnauthorized: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
      req.end(body);
      const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
      res.resume();
      await once(res, "end");
      expect(res.statusCode).toBe(200);
      expect(String(res.headers["set-cookie"])).toMatch(/; Secure/);
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });
});

describe("control characters never reach a terminal (§3): posts refuse them with 400 invalid_text", () => {
  const spoofs = [
    ["ESC sequence", "\x1b[2K\x1b[1Galice : hi"],
    ["backspaces", "\b\b\b\b\b\b\b\b\b\balice : hi"],
    ["a bidi override", "\u202eih : ecila"],
    ["a bidi isolate", "x\u2066y"],
    ["DEL", "a\x7fb"],
    ["a C1 control", "a\u009bb"],
    ["NUL", "a\x00b"],
  ] as const;

  it("refuses them on the seed endpoint, and the refused post registers no name", async () => {
    const s = await start();
    for (const [what, text] of spoofs) {
      const r = await get(seedUrl(s.url, { name: "mallory", message: text }));
      expect(r.status, what).toBe(400);
      expect(r.text, what).toMatch(/^error invalid_text: /);
    }
    expect(s.chat.hub.session("mallory")).toBeUndefined();
  });

  it("refuses them on the JSON API, in messages and private messages; TAB and line breaks still pass", async () => {
    const s = await start();
    const mallory = await joinApi(s.url, "mallory");
    const alice = await joinApi(s.url, "alice");
    for (const [what, text] of spoofs) {
      const r = await postJson(`${s.url}/api/messages`, { text }, mallory.auth);
      expect(r.status, what).toBe(400);
      expect(r.body.error.code, what).toBe("invalid_text");
      const dm = await postJson(`${s.url}/api/messages`, { text: `@alice ${text}` }, mallory.auth);
      expect(dm.status, `private, ${what}`).toBe(400);
    }
    const fine = await postJson(`${s.url}/api/messages`, { text: "a\tb\nc" }, mallory.auth);
    expect(fine.status).toBe(201);
    const seen = await apiPoll(s.url, alice.auth, { cursor: alice.cursor, timeout: 0 });
    expect(seen.messages.filter((m) => m.type === "message").map((m) => m.text)).toEqual(["a\tb\nc"]);
  });

  it("shows one from an older log escaped in the text line form", () => {
    const envelope = new Envelope({ id: 1, type: "message", room: "lobby", from: "mallory", text: "\x1b[2K\ralice : \u202ehi\x7f", ts: 0 });
    expect(envelope.line).toBe("mallory : \\x1b[2K\\nalice : \\u202ehi\\x7f\n");
  });
});

describe("--require-token and names restored from --data-dir", () => {
  let dir: string | undefined;
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("ends a name that was used without a token, so nobody speaks as it after a restart with --require-token", async () => {
    dir = await mkdtemp(join(tmpdir(), "pollchat-hardening-auth-"));
    server = await startServer({ dataDir: dir });
    const open = await get(seedUrl(server.url, { name: "dave", message: "before" }));
    expect(open.status).toBe(200);
    const claimed = await joinApi(server.url, "carol");
    await server.close();

    server = await startServer({ dataDir: dir, requireToken: true });
    expect(server.chat.hub.session("dave")).toBeUndefined();
    const poll = await get(seedUrl(server.url, { name: "dave", timeout: 0 }));
    expect(poll.status).toBe(401);
    const posted = await get(seedUrl(server.url, { name: "dave", message: "after" }));
    expect(posted.status).toBe(401);
    // A session that has its token comes back as before.
    const carol = await apiPoll(server.url, claimed.auth, { timeout: 0 });
    expect(carol.status).toBe(200);
  });
});

describe("token checks", () => {
  it("compare in constant time: equal tokens match, anything else does not", () => {
    expect(sameToken("abc", "abc")).toBe(true);
    expect(sameToken("abc", "abd")).toBe(false);
    expect(sameToken("abc", "abcd")).toBe(false);
    expect(sameToken("abc", "")).toBe(false);
    expect(sameToken("abc", undefined)).toBe(false);
    expect(sameToken(undefined, undefined)).toBe(false);
  });

  it("still tell a claimed name's token from a wrong one on the seed endpoint", async () => {
    const s = await start();
    const dave = await joinApi(s.url, "dave");
    // One character changed, always to another one (a token ending in "x" made "…x" the right token: 1 run in 64).
    const last = dave.token.at(-1) === "x" ? "y" : "x";
    const wrong = await get(seedUrl(s.url, { name: "dave", timeout: 0 }), { authorization: `Bearer ${dave.token.slice(0, -1)}${last}` });
    expect(wrong.status).toBe(401);
    const right = await get(seedUrl(s.url, { name: "dave", timeout: 0 }), dave.auth);
    expect(right.status).toBe(200);
  });
});

/** A self-signed certificate for 127.0.0.1, made for this test only (the client does not verify it: only the cookie matters here). */
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcOQxLWizuGtkLqqG
HCa2IDUF5/Kmc2S3aBzlYhSF8EmhRANCAARfX4BuOn+bfCRwQrSlFTIXrSEGMVE0
+EA1w43WP5/pcoM01M0nJaewRSUYPQuqn7RaMkL3JvQDS/SJvi9mD6dA
-----END PRIVATE KEY-----
`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUXQK+3TOQYmstdsfVIL5kR6EWTlkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyOTIxMjcyN1oYDzIxMjYxMTA1
MjEyNzI3WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARfX4BuOn+bfCRwQrSlFTIXrSEGMVE0+EA1w43WP5/pcoM01M0nJaew
RSUYPQuqn7RaMkL3JvQDS/SJvi9mD6dAo2QwYjAdBgNVHQ4EFgQUoLHzp5+i3/qw
vBEGVul2UdgH6aswHwYDVR0jBBgwFoAUoLHzp5+i3/qwvBEGVul2UdgH6aswDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
IFV866Qi+AzT4hVLuWW6HF2ARLSb6ofN1M+A6px8TfWdAiBsi6bb0Pm5d/BjTtUC
TwT6SNyTBD0Exc7h1lwYdSCb9w==
-----END CERTIFICATE-----
`;
