#!/usr/bin/env node
// The bench's yardstick: a minimal, hand-tuned node:http long-poll fan-out
// server of pollchat's seed shape (spec §1, §3, §5), with nothing else.
//
//   GET /?name=N&message=M[&room=R]   -> "ok <id>\n"; the line goes to every queue of the room
//   GET /?name=N[&cursor=C][&timeout=MS] -> queued lines at once, else held until data or timeout
//
// Per-client queue, one line per message ("name : text\n"), X-Cursor header,
// cursor acknowledgement, ack-on-finish without a cursor, a bounded queue with a
// gap line, idle sessions swept. No presence notices (pollchat's --presence-limit 0).
// With --data-dir it appends every message to a log and answers a post only
// after its batch is on disk (group commit), as spec §7 asks of pollchat.
//
// Hand-tuning: one serialisation per message, shared by every queue; a flat
// header array for writeHead; no URL object; held polls kept on their client,
// so a post wakes exactly its room's waiting polls.
import { createServer } from "node:http";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8090" },
    "poll-timeout": { type: "string", default: "4500" },
    "max-queue": { type: "string", default: "1000" },
    "session-ttl": { type: "string", default: "30" },
    "data-dir": { type: "string" },
  },
});

const POLL_TIMEOUT = Number(args["poll-timeout"]);
const MAX_TIMEOUT = 30_000;
const MAX_QUEUE = Number(args["max-queue"]);
const SESSION_TTL = Number(args["session-ttl"]) * 1000;
const NAME = /^[A-Za-z0-9_.-]{1,32}$/;

/** @typedef {{ id: number, line: string }} Entry */
/** @typedef {{ res: import("node:http").ServerResponse, cursorMode: boolean, timer: NodeJS.Timeout | undefined }} Held */

class Client {
  constructor(name) {
    this.name = name;
    /** @type {Entry[]} */
    this.queue = [];
    /** Highest id acknowledged (or issued before this client existed). */
    this.since = lastId;
    /** Messages dropped past MAX_QUEUE and not yet reported in a gap line. */
    this.missed = 0;
    /** @type {Held[]} */
    this.waiting = [];
    this.consumers = 0;
    this.lastSeen = Date.now();
    this.room = "lobby";
  }

  ack(upTo) {
    const q = this.queue;
    let n = 0;
    while (n < q.length && q[n].id <= upTo) n++;
    if (n > 0) q.splice(0, n);
    if (upTo > this.since) this.since = upTo;
    // The gap line was delivered: its count starts again.
    if (q.length === 0 || q[0].gap !== true) this.missed = 0;
  }
}

/** @type {Map<string, Client>} */
const clients = new Map();
/** @type {Map<string, Set<Client>>} */
const rooms = new Map();
let lastId = Date.now() * 1000;

function roomOf(name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = new Set()));
  return room;
}

function clientFor(name, room) {
  const key = name.toLowerCase();
  let client = clients.get(key);
  if (!client) {
    client = new Client(name);
    clients.set(key, client);
    roomOf(client.room).add(client);
  }
  if (room !== undefined && room !== client.room) {
    roomOf(room).add(client);
    client.room = room;
  }
  return client;
}

/** Ids are microsecond timestamps bumped by one when two meet, like pollchat's. */
function publish(roomName, line) {
  const id = (lastId = Math.max(lastId + 1, Date.now() * 1000));
  const entry = { id, line, gap: false };
  const members = rooms.get(roomName);
  if (!members) return id;
  for (const c of members) {
    const q = c.queue;
    q.push(entry);
    if (q.length > MAX_QUEUE) {
      // The oldest goes; one gap line at the head says how many.
      const gapAtHead = q[0].gap === true;
      const [dropped] = q.splice(gapAtHead ? 1 : 0, 1);
      c.missed++;
      const gap = { id: dropped.id, line: `* ${c.missed} messages missed\n`, gap: true };
      if (gapAtHead) q[0] = gap;
      else q.unshift(gap);
    }
    if (c.waiting.length > 0) wake(c);
  }
  return id;
}

function wake(client) {
  const waiting = client.waiting;
  client.waiting = [];
  for (const held of waiting) answer(client, held);
}

function answer(client, held) {
  if (held.timer !== undefined) clearTimeout(held.timer);
  client.consumers--;
  client.lastSeen = Date.now();
  const { res } = held;
  if (res.destroyed) return;
  const q = client.queue;
  let body = "";
  for (let i = 0; i < q.length; i++) body += q[i].line;
  const next = q.length > 0 ? q[q.length - 1].id : lastId;
  res.writeHead(200, [
    "Content-Type", "text/plain; charset=utf-8",
    "Content-Length", String(Buffer.byteLength(body)),
    "Cache-Control", "no-store",
    "X-Cursor", String(next),
  ]);
  res.end(body);
  if (!held.cursorMode && q.length > 0) res.once("finish", () => client.ack(next));
}

function hold(client, res, cursorMode, timeoutMs) {
  client.consumers++;
  client.lastSeen = Date.now();
  const held = { res, cursorMode, timer: undefined };
  if (client.queue.length > 0 || timeoutMs === 0) return answer(client, held);
  client.waiting.push(held);
  held.timer = setTimeout(() => {
    const i = client.waiting.indexOf(held);
    if (i >= 0) client.waiting.splice(i, 1);
    answer(client, held);
  }, timeoutMs);
  res.once("close", () => {
    const i = client.waiting.indexOf(held);
    if (i < 0) return;
    client.waiting.splice(i, 1);
    clearTimeout(held.timer);
    client.consumers--;
    client.lastSeen = Date.now();
  });
}

function plain(res, status, text) {
  res.writeHead(status, ["Content-Type", "text/plain; charset=utf-8", "Content-Length", String(Buffer.byteLength(text))]);
  res.end(text);
}

function decode(raw) {
  if (raw.indexOf("%") < 0 && raw.indexOf("+") < 0) return raw;
  return decodeURIComponent(raw.replace(/\+/g, " "));
}

/** The few parameters the seed protocol reads; unknown ones are ignored. */
function parseQuery(search) {
  const q = { name: undefined, message: undefined, room: undefined, cursor: undefined, timeout: undefined };
  for (const part of search.split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq);
    if (key in q) q[key] = decode(part.slice(eq + 1));
  }
  return q;
}

// --- optional persistence: append + fdatasync per batch, then answer the batch ---
let log;
/** @type {{ line: string, done: () => void }[]} */
let pending = [];
let writing = false;

async function flush() {
  writing = true;
  while (pending.length > 0) {
    const batch = pending;
    pending = [];
    let text = "";
    for (const p of batch) text += p.line;
    await log.write(text);
    await log.datasync();
    for (const p of batch) p.done();
  }
  writing = false;
}

function post(client, roomName, text, res) {
  const line = `${client.name} : ${text.replace(/\r\n|\r|\n/g, "\\n")}\n`;
  if (!log) {
    plain(res, 200, `ok ${publish(roomName, line)}\n`);
    return;
  }
  pending.push({ line: JSON.stringify({ room: roomName, line }) + "\n", done: () => plain(res, 200, `ok ${publish(roomName, line)}\n`) });
  if (!writing) flush().catch((error) => {
    console.error("baseline: log write failed", error);
    process.exit(1);
  });
}

const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  const url = req.url ?? "/";
  const qi = url.indexOf("?");
  let q;
  try {
    q = parseQuery(qi < 0 ? "" : url.slice(qi + 1));
  } catch {
    return plain(res, 400, "error bad_encoding\n");
  }
  if (q.name === undefined) return plain(res, url.startsWith("/healthz") ? 200 : 404, url.startsWith("/healthz") ? "ok\n" : "not found\n");
  if (!NAME.test(q.name) || (q.room !== undefined && !NAME.test(q.room))) return plain(res, 400, "error invalid_name\n");
  const room = q.room?.toLowerCase();
  const client = clientFor(q.name, room);
  client.lastSeen = Date.now();
  if (q.message !== undefined) {
    if (q.message.length === 0) return plain(res, 400, "error empty_message\n");
    return post(client, room ?? client.room, q.message, res);
  }
  let cursorMode = false;
  if (q.cursor !== undefined) {
    if (!/^\d{1,16}$/.test(q.cursor)) return plain(res, 400, "error invalid_cursor\n");
    cursorMode = true;
    client.ack(Math.min(Number(q.cursor), lastId));
  }
  let timeoutMs = POLL_TIMEOUT;
  if (q.timeout !== undefined) {
    if (!/^\d{1,9}$/.test(q.timeout)) return plain(res, 400, "error invalid_timeout\n");
    timeoutMs = Math.min(Number(q.timeout), MAX_TIMEOUT);
  }
  hold(client, res, cursorMode, timeoutMs);
});

// Sessions with no poll for SESSION_TTL go, so names cannot pile up.
setInterval(() => {
  const cutoff = Date.now() - SESSION_TTL;
  for (const [key, c] of clients) {
    if (c.consumers > 0 || c.lastSeen > cutoff) continue;
    clients.delete(key);
    for (const members of rooms.values()) members.delete(c);
  }
}, Math.max(10, SESSION_TTL / 4)).unref();

if (args["data-dir"] !== undefined) log = await open(join(args["data-dir"], "baseline.log"), "a");

server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on http://${address}:${port}\n`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    for (const c of clients.values()) if (c.waiting.length > 0) wake(c);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
