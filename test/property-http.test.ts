import { request, Agent } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERRORS } from "../src/errors.js";
import { joinApi, startServer, type TestServer } from "./helpers.js";

/**
 * Property tests over hostile input (issue 7): random query strings, JSON
 * bodies and headers never crash the server or draw a 5xx, every answer is a
 * documented status with the documented error shape, ids strictly increase,
 * and no client receives a private message addressed to someone else.
 * Each property runs 1,000 cases against one server, with polls that never hold.
 */
const RUNS = 1000;
const PROPERTY_TIMEOUT_MS = 120_000;

/** The statuses of spec §3, §4 and §8, plus what node:http itself answers to malformed HTTP. */
const DOCUMENTED = new Set<number>([200, 201, 204, ...Object.values(ERRORS).map(([status]) => status), 408, 431]);
DOCUMENTED.delete(500);

let server: TestServer;
let agent: Agent;
let owner: { auth: Record<string, string> };

beforeAll(async () => {
  // Polls answer at once (every timeout clamps to 0); limits high enough that only input decides an answer.
  server = await startServer({
    pollTimeoutMs: 0,
    maxPollTimeoutMs: 0,
    rate: 1_000_000,
    maxSessions: 1_000_000,
    maxConnectionsPerIp: 0,
    headersTimeoutMs: 2000,
    requestTimeoutMs: 2000,
  });
  agent = new Agent({ keepAlive: true, maxSockets: 4 });
  owner = await joinApi(server.url, "owner");
});

afterAll(async () => {
  agent.destroy();
  await server.close();
});

interface Answer {
  status: number;
  type: string;
  body: string;
}

function send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, method, path, headers, agent }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"] ?? ""), body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Every answer: a documented status, never 5xx; an error carries the error table's code for its status. */
function checkAnswer(a: Answer, asJson: boolean): void {
  expect(DOCUMENTED.has(a.status), `status ${a.status}: ${a.body}`).toBe(true);
  expect(a.status).toBeLessThan(500);
  if (a.status < 400) return;
  let code: string;
  if (asJson || a.type.startsWith("application/json")) {
    const parsed = JSON.parse(a.body) as { error: { code: string; message: string } };
    code = parsed.error.code;
    expect(typeof parsed.error.message).toBe("string");
  } else {
    const m = /^error ([a-z_]+): .*\n$/.exec(a.body);
    expect(m, a.body).not.toBeNull();
    code = m![1]!;
  }
  expect(Object.hasOwn(ERRORS, code), code).toBe(true);
  expect(ERRORS[code as keyof typeof ERRORS][0]).toBe(a.status);
}

const validName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,32}$/);
const trickyName = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "owner", "OWNER");
/** Values as a query carries them: encoded text, or raw garbage the decoder must refuse. */
const queryValue = fc.oneof(
  validName,
  trickyName,
  fc.string().map(encodeURIComponent),
  fc.string({ unit: "grapheme" }).map(encodeURIComponent),
  fc.constantFrom("", "%", "%z", "%zz", "%C3%28", "%ED%A0%80", "%00", "+", "%2B", "%0A%0D", "-1", "1e3", "0x10", "99999999999999999999"),
  fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
  fc.constantFrom("/who", "/rooms", "/join%20x", "/leave", "/nope", "%40owner%20hi", "%40nobody%20hi", "json", "text"),
);
const queryKey = fc.oneof(
  fc.constantFrom("name", "message", "room", "cursor", "timeout", "format", "txn", "to", "before", "limit", "_", "__proto__", "constructor"),
  fc.string().map(encodeURIComponent),
);
const query = fc
  .array(fc.tuple(queryKey, fc.option(queryValue, { nil: undefined })), { maxLength: 6 })
  .map((pairs) => pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join("&"));
const apiPath = fc.constantFrom(
  "/api/poll",
  "/api/rooms",
  "/api/rooms/lobby",
  "/api/rooms/lobby/messages",
  "/api/rooms/%ZZ",
  "/api/rooms/__proto__/messages",
  "/api/events",
  "/api/nope",
);

describe("property: random input never crashes the server", () => {
  it("answers random query strings on / and /api with documented statuses", { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant("/"), apiPath), query, fc.constantFrom("GET", "GET", "HEAD", "POST", "DELETE"), async (path, q, method) => {
        const a = await send(method, q === "" ? path : `${path}?${q}`);
        if (method !== "HEAD") checkAnswer(a, path.startsWith("/api/"));
        else expect(a.status).toBeLessThan(500);
      }),
      { numRuns: RUNS },
    );
    expect((await send("GET", "/healthz")).status).toBe(200);
  });

  it("answers random JSON bodies on the JSON API with documented statuses", { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    const field = fc.oneof(validName, trickyName, fc.string(), fc.constantFrom("/who", "@owner hi", "/join x", "/leave"), fc.jsonValue());
    const body = fc.oneof(
      fc.record({ name: field, room: field, text: field, to: field, txn: field }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string(),
      fc.constantFrom("", "{", "null", "[]", '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"x":1}}}'),
    );
    const auth = fc.constantFrom<"none" | "garbage" | "owner">("none", "garbage", "owner");
    const contentType = fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "APPLICATION/JSON", "");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/api/join", "/api/messages", "/api/leave"), body, auth, contentType, async (path, text, who, type) => {
        const headers: Record<string, string> = {};
        if (type !== "") headers["content-type"] = type;
        if (who === "garbage") headers.authorization = "Bearer nope";
        // Leaving without a room would end the owner's session: the owner only posts.
        if (who === "owner" && path === "/api/messages") Object.assign(headers, owner.auth);
        checkAnswer(await send("POST", path, headers, text), true);
      }),
      { numRuns: RUNS },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await send("GET", "/healthz")).status).toBe(200);
  });

  it("answers random headers with documented statuses", { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    // Any bytes node:http lets a client send in a header value; Content-Length and
    // Transfer-Encoding stay out, since a lying length only waits for the request timeout.
    const headerValue = fc.oneof(
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) }),
      fc.constantFrom("Bearer ", "Bearer x", "Bearer " + "a".repeat(200), "pollchat_token=;", "pollchat_token=x; pollchat_token=y", "-1", "999999999999999999999"),
    );
    const headerName = fc.oneof(
      fc.constantFrom("accept", "authorization", "cookie", "content-type", "last-event-id", "origin", "x-forwarded-for", "connection"),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/),
    );
    const path = fc.constantFrom("/?name=hdr&timeout=0", "/?name=hdr&message=hi", "/api/poll?timeout=0", "/api/rooms", "/api/events", "/metrics", "/", "/healthz");
    await fc.assert(
      fc.asyncProperty(path, fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }), async (p, pairs) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of pairs) {
          if (/^(content-length|transfer-encoding|host|expect|upgrade)$/i.test(k)) continue;
          headers[k] = v;
        }
        checkAnswer(await send("GET", p, headers), p.startsWith("/api/"));
      }),
      { numRuns: RUNS },
    );
    expect((await send("GET", "/healthz")).status).toBe(200);
  });
});

interface Msg {
  id: number;
  type: string;
  from: string;
  to?: string;
}

describe("property: ids and private messages", () => {
  it("keeps ids strictly increasing and private messages between their two ends", { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    let run = 0;
    const action = fc.oneof(
      fc.record({
        kind: fc.constant("post" as const),
        who: fc.integer({ min: 0, max: 2 }),
        text: fc.oneof(
          fc.string({ minLength: 1, maxLength: 20 }),
          fc.integer({ min: 0, max: 2 }).map((to) => `@${to} `),
          fc.tuple(fc.integer({ min: 0, max: 3 }), fc.string({ minLength: 1, maxLength: 10 })).map(([to, t]) => `@${to} ${t}`),
          fc.constantFrom("/who", "/rooms", "/leave", "/join side", "/join main"),
        ),
      }),
      fc.record({ kind: fc.constant("poll" as const), who: fc.integer({ min: 0, max: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 6 }), async (actions) => {
        // Fresh names and rooms per case: u<run>n<i>, registered by their first request. "@1 hi" is private to u<run>n1.
        const r = run++;
        const names = [0, 1, 2].map((i) => `u${r}n${i}`);
        const room = (t: string) => t.replace(/^\/join (side|main)$/, `/join r${r}$1`).replace(/^@(\d)/, (_, i: string) => `@u${r}n${i}`);
        const cursors = names.map(() => "0");
        const lastSeen = names.map(() => 0);
        let lastPosted = 0;

        const poll = async (i: number): Promise<void> => {
          const a = await send("GET", `/?name=${names[i]}&room=r${r}main&format=json&cursor=${cursors[i]}`);
          checkAnswer(a, true);
          if (a.status !== 200) return;
          const { messages, cursor } = JSON.parse(a.body) as { messages: Msg[]; cursor: number };
          for (const m of messages) {
            expect(m.id).toBeGreaterThan(lastSeen[i]!);
            lastSeen[i] = m.id;
            if (m.type === "private") expect([m.from.toLowerCase(), m.to?.toLowerCase()]).toContain(names[i]);
          }
          cursors[i] = String(cursor);
        };

        for (const a of actions) {
          if (a.kind === "poll") {
            await poll(a.who);
            continue;
          }
          const answer = await send("GET", `/?name=${names[a.who]}&room=r${r}main&message=${encodeURIComponent(room(a.text))}`);
          checkAnswer(answer, false);
          const ok = /^ok (\d+)\n$/.exec(answer.body);
          if (answer.status === 200) {
            expect(ok).not.toBeNull();
            expect(Number(ok![1])).toBeGreaterThan(lastPosted);
            lastPosted = Number(ok![1]);
          }
        }
        for (const i of [0, 1, 2]) await poll(i);
      }),
      { numRuns: RUNS },
    );
  });
});
