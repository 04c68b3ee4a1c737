#!/usr/bin/env node
// The bench's load generator: raw node:net sockets, HTTP/1.1 keep-alive, one
// request at a time per connection, responses parsed here (Content-Length
// bodies only: both servers send them). No node:http, so the generator spends
// its time on the servers' answers, not on its own client machinery.
//
// Run by run.js as a child process with an IPC channel: it receives
// { id, cmd, ...params } and answers { id, result } or { id, error }.
// Commands: hold, probe, release (S1), fanout (S2), latency (S3), posts (S4).
// Pollers use the seed's `/` or, with path: "api", the JSON API (spec §4).
// S2-S4 post through `/`, which the baseline speaks too; S1's probe posts as
// one of the held pollers, on its path.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { performance } from "node:perf_hooks";
import { readJoinAnswer, readJsonAnswer, readTextAnswer } from "./answers.js";

const HEADER_END = Buffer.from("\r\n\r\n");

/**
 * Connections to a loopback server come from 200 source addresses in turn
 * (Linux routes all of 127.0.0.0/8 to lo), as many clients would: a server that
 * caps connections per address then sees at most 50 from each at N = 10,000,
 * and each address has its own ephemeral ports.
 */
const SOURCE_ADDRESSES = 200;
let connCount = 0;
function sourceAddress(host) {
  if (process.platform !== "linux" || host !== "127.0.0.1") return undefined;
  return `127.0.0.${10 + (connCount++ % SOURCE_ADDRESSES)}`;
}

/** One keep-alive connection; get() and post() send a request and call back with (status, body, X-Cursor). */
class HttpConn {
  /** @param {string} host @param {number} port */
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.localAddress = sourceAddress(host);
    /** @type {import("node:net").Socket | null} */
    this.socket = null;
    /** @type {Buffer | null} */
    this.buf = null;
    /** @type {((status: number, body: string, cursor: string | undefined) => void) | null} */
    this.cb = null;
    this.request = "";
    /** Times the connection had to be opened again (server closed it, or an error). */
    this.reconnects = -1;
  }

  /**
   * A status of 0 means the connection failed; body then holds the error code.
   * `headers` is extra header lines, each ending in CRLF.
   */
  get(path, cb, headers = "") {
    this.#send(`GET ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n${headers}\r\n`, cb);
  }

  /** POSTs a JSON body. */
  post(path, json, cb, headers = "") {
    const head = `POST ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n${headers}Content-Type: application/json\r\n`;
    this.#send(`${head}Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`, cb);
  }

  #send(request, cb) {
    this.cb = cb;
    this.request = request;
    if (this.socket === null) this.#open();
    else this.socket.write(this.request, "latin1");
  }

  #open() {
    this.reconnects++;
    this.buf = null;
    const socket = connect({ host: this.host, port: this.port, localAddress: this.localAddress, noDelay: true });
    this.socket = socket;
    socket.on("connect", () => socket.write(this.request, "latin1"));
    socket.on("data", (chunk) => this.#onData(chunk));
    socket.on("error", () => {});
    socket.on("close", (hadError) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const cb = this.cb;
      this.cb = null;
      if (cb) cb(0, hadError ? "error" : "closed", undefined);
    });
  }

  #onData(chunk) {
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const buf = this.buf;
      if (buf === null) return;
      const end = buf.indexOf(HEADER_END);
      if (end < 0) return;
      const head = buf.toString("latin1", 0, end).toLowerCase();
      const status = Number(head.slice(9, 12));
      const lengthText = headerValue(head, "content-length");
      if (lengthText === undefined) throw new Error(`response without Content-Length: ${head}`);
      const total = end + 4 + Number(lengthText);
      if (buf.length < total) return;
      const body = total > end + 4 ? buf.toString("utf8", end + 4, total) : "";
      this.buf = buf.length > total ? buf.subarray(total) : null;
      const cb = this.cb;
      this.cb = null;
      if (headerValue(head, "connection") === "close") this.#drop();
      if (cb) cb(status, body, headerValue(head, "x-cursor"));
    }
  }

  #drop() {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
  }

  /** Closes with a reset, so no TIME_WAIT is left to use up ephemeral ports between runs. */
  reset() {
    const socket = this.socket;
    this.socket = null;
    this.cb = null;
    if (socket && !socket.destroyed) socket.resetAndDestroy();
  }
}

function headerValue(head, name) {
  const at = head.indexOf(`\r\n${name}:`);
  if (at < 0) return undefined;
  const from = at + name.length + 3;
  const to = head.indexOf("\r\n", from);
  return head.slice(from, to < 0 ? head.length : to).trim();
}

function getP(conn, path) {
  return new Promise((resolve) => conn.get(path, (status, body, cursor) => resolve({ status, body, cursor })));
}

function parseUrl(url) {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The server under test, so phases can be charged its CPU time too (from /proc, on Linux). */
let server = { pid: undefined, clkTck: 100 };

/**
 * CPU time this process and the server used over a phase, against wall time:
 * near 1.0 means a core was saturated. `wait` is the share of the phase a
 * main thread sat runnable but not running (Linux schedstat): other processes
 * on its core, i.e. a noisy machine.
 */
function cpuMeter() {
  const cpu0 = process.cpuUsage();
  const wait0 = runQueueWaitMs();
  const serverCpu0 = serverCpuMs();
  const serverWait0 = runQueueWaitMs(server.pid);
  const t0 = performance.now();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const serverMs = serverCpuMs() - serverCpu0;
    return {
      wallMs: round(wallMs),
      cpuMs: round(cpuMs),
      util: round(cpuMs / wallMs, 3),
      wait: round((runQueueWaitMs() - wait0) / wallMs, 3),
      serverCpuMs: round(serverMs),
      serverUtil: round(serverMs / wallMs, 3),
      serverWait: round((runQueueWaitMs(server.pid) - serverWait0) / wallMs, 3),
    };
  };
}

/** User + system time of every thread of the server, in ms (10 ms resolution). */
function serverCpuMs() {
  if (server.pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${server.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / server.clkTck;
  } catch {
    return NaN;
  }
}

function runQueueWaitMs(pid) {
  try {
    const file = pid === undefined ? "/proc/thread-self/schedstat" : `/proc/${pid}/schedstat`;
    return Number(readFileSync(file, "utf8").split(" ")[1]) / 1e6;
  } catch {
    return NaN;
  }
}

const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * How a poller registers and polls (spec §3, §4). "seed": its first poll
 * (timeout=0) registers the name, then `/?name=N&cursor=C&timeout=MS`, the
 * cursor in X-Cursor, the answer in text lines. "api": POST /api/join
 * {"name"} answers a token and a cursor, then GET /api/poll?cursor=C with
 * Authorization: Bearer, the answer and its cursor in JSON. post() posts as
 * a registered poller: `/?name=N&message=M`, or POST /api/messages with its token.
 */
function clientPath(path) {
  if (path === "api") {
    return {
      join(conn, name) {
        return new Promise((resolve) =>
          conn.post("/api/join", JSON.stringify({ name }), (status, body) => {
            const joined = status === 200 ? readJoinAnswer(body) : undefined;
            resolve(joined ? { status, session: { name, auth: `Authorization: Bearer ${joined.token}\r\n` }, cursor: joined.cursor } : { status, body });
          }),
        );
      },
      poll(conn, session, cursor, timeoutMs, cb) {
        conn.get(`/api/poll?cursor=${cursor}&timeout=${timeoutMs}`, cb, session.auth);
      },
      post(conn, session, text) {
        return new Promise((resolve) => conn.post("/api/messages", JSON.stringify({ text }), (status, body) => resolve({ status, body }), session.auth));
      },
      /** The answer's entries to `visit`; its cursor, or undefined for a body that is not a poll answer. */
      read: (body, _headerCursor, poster, textPrefix, visit) => readJsonAnswer(body, poster, textPrefix, visit),
    };
  }
  if (path !== "seed" && path !== undefined) throw new Error(`unknown path ${path}`);
  return {
    join(conn, name) {
      return new Promise((resolve) =>
        conn.get(`/?name=${name}&cursor=0&timeout=0`, (status, body, cursor) =>
          resolve(status === 200 && cursor !== undefined ? { status, session: { name }, cursor } : { status, body }),
        ),
      );
    },
    poll(conn, session, cursor, timeoutMs, cb) {
      conn.get(`/?name=${session.name}&cursor=${cursor}&timeout=${timeoutMs}`, cb);
    },
    post(conn, session, text) {
      return getP(conn, `/?name=${session.name}&message=${encodeURIComponent(text)}`);
    },
    read(body, headerCursor, poster, textPrefix, visit) {
      readTextAnswer(body, poster, textPrefix, visit);
      return headerCursor;
    },
  };
}

/**
 * Opens one connection per name and registers it, a bounded number at a time
 * so the server's accept queue never overflows. Each one starts polling
 * (onRegistered) as soon as it is registered: a connection left idle until
 * all the others are registered would meet the server's keep-alive timeout.
 */
async function register(via, conns, names, onRegistered, concurrency = 200) {
  let registered = 0;
  const failures = {};
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const i = next++;
      const r = await via.join(conns[i], names[i]);
      if (r.session !== undefined) {
        registered++;
        onRegistered(i, r.session, r.cursor);
      } else failures[r.status || r.body] = (failures[r.status || r.body] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return { failures, registered };
}

function connections(target, n) {
  return Array.from({ length: n }, () => new HttpConn(target.host, target.port));
}

// ---------------------------------------------------------------- S1 held polls

/** @type {{ via: ReturnType<typeof clientPath>, conns: HttpConn[], prober: object | undefined, registered: number, stop: boolean, answered: number, retried: number, probeSeen: number, lastResponseAt: number, errors: Record<string, number> } | null} */
let held = null;

async function hold({ url, n, path, timeoutMs = 30_000, quietMs = 1000 }) {
  const target = parseUrl(url);
  const via = clientPath(path);
  const meter = cpuMeter();
  const names = Array.from({ length: n }, (_, i) => `h${i}`);
  // h0 posts the probe: with default settings (at most 10,000 sessions) a name of its own may find no room.
  const state = { via, conns: connections(target, n), prober: undefined, registered: 0, stop: false, answered: 0, retried: 0, probeSeen: 0, lastResponseAt: performance.now(), errors: {} };
  held = state;
  const visit = { seq: () => state.probeSeen++, gap() {}, other() {} };
  const loop = (i, session, cursor) =>
    via.poll(state.conns[i], session, cursor, timeoutMs, (status, body, headerCursor) => {
      state.lastResponseAt = performance.now();
      if (state.stop) return;
      let next = cursor;
      if (status === 0) state.retried++; // the connection closed under the poll: poll again on a new one, as a client would
      else if (status !== 200) {
        state.errors[status] = (state.errors[status] ?? 0) + 1;
        return;
      } else {
        state.answered++;
        next = via.read(body, headerCursor, "h0", "probe", visit);
        if (next === undefined) {
          state.errors.badAnswer = (state.errors.badAnswer ?? 0) + 1;
          return;
        }
      }
      loop(i, session, next);
    });
  const { failures, registered } = await register(via, state.conns, names, (i, session, cursor) => {
    if (i === 0) state.prober = session;
    loop(i, session, cursor);
  });
  state.registered = registered;
  Object.assign(state.errors, failures);
  // Held means: every poll sent, no answer for a while, and the server idle (it has taken in every request).
  const deadline = performance.now() + 60_000;
  let serverBefore = serverCpuMs();
  for (;;) {
    await sleep(500);
    const serverNow = serverCpuMs();
    const serverIdle = !(serverNow - serverBefore > 25);
    serverBefore = serverNow;
    if ((performance.now() - state.lastResponseAt >= quietMs && serverIdle) || performance.now() > deadline) break;
  }
  const cpu = meter();
  return { requested: n, held: registered, answeredWhileSettling: state.answered, retried: state.retried, errors: { ...state.errors }, setupMs: cpu.wallMs, cpu };
}

/** Posts one message as h0 and waits until every held poll has carried it: held polls are served. */
async function probe({ url, waitMs = 20_000 }) {
  const state = held;
  if (!state) throw new Error("probe without hold");
  if (!state.prober) throw new Error("probe without h0 registered");
  const target = parseUrl(url);
  const conn = new HttpConn(target.host, target.port);
  const t0 = performance.now();
  const r = await state.via.post(conn, state.prober, "probe");
  conn.reset();
  const expected = state.registered;
  while (state.probeSeen < expected && performance.now() - t0 < waitMs) await sleep(20);
  return { postStatus: r.status, expected, served: state.probeSeen, retried: state.retried, errors: { ...state.errors }, ms: round(performance.now() - t0) };
}

async function release() {
  if (held) {
    held.stop = true;
    for (const c of held.conns) c.reset();
    held = null;
  }
  return { released: true };
}

// ------------------------------------------------------- S2 fan-out, S3 latency

/**
 * Pollers that loop with cursors and check what arrives from one poster
 * (texts `${textPrefix}<seq>...`): every sequence number exactly once and in
 * order, per poller.
 */
function startPollers(via, conns, m, poster, textPrefix, onMessage) {
  const stats = { delivered: 0, duplicates: 0, outOfOrder: 0, gaps: 0, other: 0, errors: {}, retried: 0, lastDeliveryAt: 0, responses: 0 };
  const seen = new Uint8Array(conns.length * m);
  let stopped = false;
  let now = 0;
  const gap = () => stats.gaps++;
  const other = () => stats.other++;
  return {
    stats,
    /** Starts poller i's loop from its registration cursor. */
    start(i, session, first) {
      let cursor = first;
      let last = -1;
      const base = i * m;
      const visit = {
        seq(rest) {
          const seq = Number.parseInt(rest, 10);
          if (!(seq >= 0 && seq < m)) return void stats.other++;
          if (seen[base + seq] === 1) return void stats.duplicates++;
          seen[base + seq] = 1;
          stats.delivered++;
          stats.lastDeliveryAt = now;
          if (seq < last) stats.outOfOrder++;
          else last = seq;
          onMessage?.(rest, now);
        },
        gap,
        other,
      };
      const onResponse = (status, body, headerCursor) => {
        if (stopped) return;
        if (status === 0) stats.retried++; // the connection closed under the poll: poll again with the same cursor
        else if (status !== 200) {
          stats.errors[status] = (stats.errors[status] ?? 0) + 1;
          return; // an error answer will not get better by asking again at full speed
        } else {
          stats.responses++;
          now = performance.now();
          const next = via.read(body, headerCursor, poster, textPrefix, visit);
          if (next === undefined) {
            stats.errors.badAnswer = (stats.errors.badAnswer ?? 0) + 1;
            return;
          }
          cursor = next;
        }
        via.poll(conns[i], session, cursor, 30_000, onResponse);
      };
      via.poll(conns[i], session, cursor, 30_000, onResponse);
    },
    stop() {
      stopped = true;
      for (const c of conns) c.reset();
    },
  };
}

/** Waits until `done()` or until nothing new was delivered for stallMs. */
async function waitDelivered(stats, done, stallMs) {
  let lastCount = -1;
  let lastChange = performance.now();
  while (!done()) {
    if (stats.delivered !== lastCount) {
      lastCount = stats.delivered;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > stallMs) return false;
    await sleep(5);
  }
  return true;
}

async function fanout({ url, n, m, path, stallMs = 10_000 }) {
  const target = parseUrl(url);
  const via = clientPath(path);
  const names = Array.from({ length: n }, (_, i) => `f${i}`);
  const setupStart = performance.now();
  const conns = connections(target, n);
  const pollers = startPollers(via, conns, m, "fp", "m");
  const { failures, registered } = await register(via, conns, names, pollers.start);
  // Let the server take in every poll before the clock starts.
  await sleep(Math.min(2000, 200 + n / 5));
  const setupMs = round(performance.now() - setupStart);

  const poster = new HttpConn(target.host, target.port);
  const postErrors = {};
  const meter = cpuMeter();
  const t0 = performance.now();
  let postsDoneAt = t0;
  let accepted = 0;
  for (let k = 0; k < m; k++) {
    const r = await getP(poster, `/?name=fp&message=m${k}`);
    if (r.status === 200 && r.body.startsWith("ok ")) accepted++;
    else postErrors[r.status || r.body] = (postErrors[r.status || r.body] ?? 0) + 1;
  }
  postsDoneAt = performance.now();
  const expected = registered * accepted;
  const complete = await waitDelivered(pollers.stats, () => pollers.stats.delivered >= expected, stallMs);
  const cpu = meter();
  pollers.stop();
  poster.reset();
  const s = pollers.stats;
  const elapsedMs = (complete ? s.lastDeliveryAt : performance.now()) - t0;
  return {
    n,
    m,
    path: path ?? "seed",
    registered,
    registerFailures: failures,
    accepted,
    postErrors,
    expected,
    delivered: s.delivered,
    lost: expected - s.delivered,
    duplicates: s.duplicates,
    outOfOrder: s.outOfOrder,
    gaps: s.gaps,
    otherLines: s.other,
    pollErrors: s.errors,
    pollRetries: s.retried,
    responses: s.responses,
    complete,
    setupMs,
    postsPerSec: round((accepted * 1000) / (postsDoneAt - t0)),
    elapsedMs: round(elapsedMs),
    deliveriesPerSec: Math.round((s.delivered * 1000) / elapsedMs),
    serverCpuUsPerDelivery: round((cpu.serverCpuMs * 1000) / s.delivered, 2),
    cpu,
  };
}

async function latency({ url, n, intervalMs, durationMs, path, stallMs = 5000 }) {
  const target = parseUrl(url);
  const via = clientPath(path);
  const names = Array.from({ length: n }, (_, i) => `l${i}`);
  const m = Math.floor(durationMs / intervalMs);
  const samples = new Float64Array(n * m);
  let count = 0;
  // Text is "s<seq>_<send time in ms>", stamped just before the post is written.
  const conns = connections(target, n);
  const pollers = startPollers(via, conns, m, "lp", "s", (rest, now) => {
    const sentAt = Number(rest.slice(rest.indexOf("_") + 1));
    samples[count++] = now - sentAt;
  });
  const { failures, registered } = await register(via, conns, names, pollers.start);
  await sleep(Math.min(2000, 200 + n / 5));

  const poster = new HttpConn(target.host, target.port);
  const meter = cpuMeter();
  const t0 = performance.now();
  let accepted = 0;
  let late = 0;
  for (let k = 0; k < m; k++) {
    const due = t0 + k * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -intervalMs / 2) late++;
    const r = await getP(poster, `/?name=lp&message=s${k}_${performance.now().toFixed(3)}`);
    if (r.status === 200) accepted++;
  }
  const complete = await waitDelivered(pollers.stats, () => pollers.stats.delivered >= registered * accepted, stallMs);
  const cpu = meter();
  pollers.stop();
  poster.reset();
  const sorted = samples.subarray(0, count).sort();
  const pick = (q) => (count === 0 ? NaN : round(sorted[Math.min(count - 1, Math.floor(q * count))], 2));
  const s = pollers.stats;
  return {
    n,
    messages: m,
    path: path ?? "seed",
    registered,
    registerFailures: failures,
    accepted,
    latePosts: late,
    delivered: s.delivered,
    lost: registered * accepted - s.delivered,
    duplicates: s.duplicates,
    outOfOrder: s.outOfOrder,
    gaps: s.gaps,
    pollErrors: s.errors,
    pollRetries: s.retried,
    complete,
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    maxMs: count === 0 ? NaN : round(sorted[count - 1], 2),
    meanMs: count === 0 ? NaN : round(sorted.reduce((a, b) => a + b, 0) / count, 2),
    cpu,
  };
}

// --------------------------------------------------------------------- S4 posts

async function posts({ url, connections, durationMs, warmupMs = 300 }) {
  const target = parseUrl(url);
  const conns = Array.from({ length: connections }, () => new HttpConn(target.host, target.port));
  let counting = false;
  let accepted = 0;
  const errors = {};
  let stop = false;
  const loops = conns.map(
    (conn, i) =>
      new Promise((resolve) => {
        let k = 0;
        const next = () => {
          if (stop) return resolve(undefined);
          conn.get(`/?name=w${i}&message=x${k++}`, (status, body) => {
            if (status === 200 && body.startsWith("ok ")) {
              if (counting) accepted++;
            } else errors[status || body] = (errors[status || body] ?? 0) + 1;
            next();
          });
        };
        next();
      }),
  );
  await sleep(warmupMs);
  counting = true;
  const meter = cpuMeter();
  await sleep(durationMs);
  counting = false;
  const cpu = meter();
  stop = true;
  await Promise.all(loops);
  for (const c of conns) c.reset();
  return {
    connections,
    accepted,
    errors,
    postsPerSec: Math.round((accepted * 1000) / cpu.wallMs),
    serverCpuUsPerPost: round((cpu.serverCpuMs * 1000) / accepted, 2),
    cpu,
  };
}

const commands = { hold, probe, release, fanout, latency, posts };

process.on("message", async (msg) => {
  try {
    server = { pid: msg.serverPid, clkTck: msg.clkTck ?? 100 };
    const command = commands[msg.cmd];
    if (!command) throw new Error(`unknown command ${msg.cmd}`);
    process.send({ id: msg.id, result: await command(msg) });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
process.on("disconnect", () => process.exit(0));
