import type { Session } from "../session.js";
import type { SessionRecord } from "../journal.js";
import type { ChatMessage, Envelope, MessageType } from "../message.js";
// Names and rooms as validate.ts admits them: a log line is input like any other.
import { isName } from "../validate.js";

/**
 * One line of the log (JSON). Keys are short: a record is written for every
 * message and every acknowledgement, and read back only at start.
 *
 * A compacted file starts with a snapshot (head, hist, env, sess with its
 * queue, txn); events follow as they happen (msg, sess, join, cur, left, end,
 * ack, txn). Replaying both in order rebuilds the hub (replay.ts).
 */
export type LogRecord =
  /** Snapshot head: the newest id issued, so ids never go back even when that message is gone. */
  | { k: "head"; v: 1; last: number }
  /** An accepted message. `c`: its recipients' keys when they are not the room's members (private, system). */
  | { k: "msg"; m: ChatMessage; c?: string[] }
  /** Snapshot: a message of a room's kept history (delivered to no one). */
  | { k: "hist"; m: ChatMessage }
  /** Snapshot: a message only a queue still holds. */
  | { k: "env"; m: ChatMessage }
  /**
   * A session: at start only n, t, s (and a: its rooms claim, when its JWT had one; p: 1 when a proof made it;
   * ip: the address that made it); in a snapshot also its rooms, current room and queue (ids, or inline gaps).
   * A line of an older log has neither p nor ip: its session is read as unproven and of no address.
   */
  | {
      k: "sess";
      n: string;
      t?: string;
      s: number;
      a?: string[];
      p?: 1;
      ip?: string;
      r?: string[];
      c?: string;
      q?: (number | ChatMessage)[];
    }
  | { k: "join"; n: string; r: string }
  | { k: "cur"; n: string; r: string }
  | { k: "left"; n: string; r: string }
  | { k: "end"; n: string }
  /** The session's queue acknowledged everything up to `u` (its new `since`). */
  | { k: "ack"; n: string; u: number }
  /** p: the address the key counts against (the one that made the posting session), when known. */
  | { k: "txn"; n: string; x: string; i: number; a: number; p?: string };

export const FORMAT_VERSION = 1;

/** The longest address a session line may carry: an IPv6 address with a zone fits with room to spare. */
const MAX_ADDRESS_LENGTH = 100;

export function headLine(lastId: number): string {
  return `{"k":"head","v":${FORMAT_VERSION},"last":${lastId}}`;
}

/** Reuses the envelope's cached JSON: a message is serialised once, whatever reads it. */
export function messageLine(envelope: Envelope, recipients?: readonly string[]): string {
  return recipients === undefined
    ? `{"k":"msg","m":${envelope.json}}`
    : `{"k":"msg","m":${envelope.json},"c":${JSON.stringify(recipients)}}`;
}

export function historyLine(envelope: Envelope): string {
  return `{"k":"hist","m":${envelope.json}}`;
}

export function envelopeLine(envelope: Envelope): string {
  return `{"k":"env","m":${envelope.json}}`;
}

export function sessionStartLine(client: Session): string {
  return JSON.stringify({ k: "sess", n: client.name, t: client.token, s: client.queue.since, a: allowedOf(client), ...origin(client) });
}

/**
 * Whether a proof made it, and who: what the caps on an address and a switch to an identity source
 * read back (JSON.stringify leaves out undefined).
 */
function origin(client: Session): { p?: 1; ip?: string } {
  return { p: client.proven ? 1 : undefined, ip: client.address };
}

/** The rooms claim, when there is one (JSON.stringify leaves out an undefined key). */
function allowedOf(client: Session): string[] | undefined {
  return client.allowedRooms === undefined ? undefined : [...client.allowedRooms];
}

/**
 * A whole session for a snapshot; its queue's messages must be written (hist/env) before it.
 * `queue`: what it holds, when that is not its queue now (messages held for a batch count as delivered).
 */
export function sessionLine(client: Session, queue: readonly Envelope[] = client.queue.peek()): string {
  const q = queue.map((e) => (e.message.type === "gap" ? e.message : e.id));
  const a = allowedOf(client);
  const { name: n, token: t, currentRoom: c } = client;
  return JSON.stringify({ k: "sess", n, t, s: client.queue.since, a, ...origin(client), r: [...client.rooms], c, q });
}

export function roomLine(kind: "join" | "cur" | "left", client: Session, room: string): string {
  return JSON.stringify({ k: kind, n: client.key, r: room });
}

export function endLine(client: Session): string {
  return JSON.stringify({ k: "end", n: client.key });
}

export function ackLine(client: Session): string {
  return JSON.stringify({ k: "ack", n: client.key, u: client.queue.since });
}

/** A session's record from the hub's journal as its line; acks are written per batch (ackLine). */
export function sessionRecordLine(record: Exclude<SessionRecord, { kind: "ack" }>): string {
  switch (record.kind) {
    case "session":
      return sessionStartLine(record.session);
    case "join":
      return roomLine("join", record.session, record.room);
    case "current":
      return roomLine("cur", record.session, record.room);
    case "leave":
      return roomLine("left", record.session, record.room);
    case "end":
      return endLine(record.session);
    case "txn":
      return txnLine(record.session.key, record.txn, record.id, record.at, record.session.address);
  }
}

export function txnLine(key: string, txn: string, id: number, at: number, address: string | undefined): string {
  return JSON.stringify({ k: "txn", n: key, x: txn, i: id, a: at, ...(address !== undefined && { p: address }) });
}

const MESSAGE_TYPES = new Set<MessageType>(["message", "private", "join", "leave", "system", "gap"]);
const MESSAGE_KEYS = new Set(["id", "type", "room", "from", "text", "ts", "to", "missed"]);

type Fields = Record<string, unknown>;

/** A log line back into a record, or undefined when it is not one (torn, garbage, wrong shape). */
export function parseRecord(line: string): LogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const r = value;
  switch (r.k) {
    case "head":
      return r.v === FORMAT_VERSION && isId(r.last) ? { k: "head", v: FORMAT_VERSION, last: r.last } : undefined;
    case "msg": {
      const m = toMessage(r.m);
      if (!m) return undefined;
      if (r.c === undefined) return { k: "msg", m };
      return Array.isArray(r.c) && r.c.every(isName) ? { k: "msg", m, c: r.c as string[] } : undefined;
    }
    case "hist":
    case "env": {
      const m = toMessage(r.m);
      return m ? { k: r.k, m } : undefined;
    }
    case "sess":
      return toSession(r);
    case "join":
    case "cur":
    case "left":
      return isName(r.n) && isName(r.r) ? { k: r.k, n: r.n, r: r.r } : undefined;
    case "end":
      return isName(r.n) ? { k: "end", n: r.n } : undefined;
    case "ack":
      return isName(r.n) && isCount(r.u) ? { k: "ack", n: r.n, u: r.u } : undefined;
    case "txn": {
      if (!isName(r.n) || typeof r.x !== "string" || !isId(r.i) || !isCount(r.a)) return undefined;
      // An address is short (addressKey: IPv4, an IPv6 /64, or what a proxy's hop says, bounded by the header cap).
      const p = typeof r.p === "string" && r.p.length <= 256 ? r.p : undefined;
      return { k: "txn", n: r.n, x: r.x, i: r.i, a: r.a, ...(p !== undefined && { p }) };
    }
    default:
      return undefined;
  }
}

function toSession(r: Fields): LogRecord | undefined {
  if (!isName(r.n) || !isCount(r.s)) return undefined;
  if (r.t !== undefined && typeof r.t !== "string") return undefined;
  const record: LogRecord & { k: "sess" } = { k: "sess", n: r.n, s: r.s };
  if (r.t !== undefined) record.t = r.t;
  if (r.a !== undefined) {
    if (!Array.isArray(r.a) || r.a.length === 0 || !r.a.every(isName)) return undefined;
    record.a = r.a as string[];
  }
  if (r.p !== undefined) {
    if (r.p !== 1) return undefined;
    record.p = 1;
  }
  if (r.ip !== undefined) {
    // An address key (address-key.ts): an IPv4 address, an IPv6 /64, or what a socket said; bounded as a line of ours holds it.
    if (typeof r.ip !== "string" || r.ip.length === 0 || r.ip.length > MAX_ADDRESS_LENGTH) return undefined;
    record.ip = r.ip;
  }
  if (r.r !== undefined) {
    if (!Array.isArray(r.r) || !r.r.every(isName)) return undefined;
    record.r = r.r as string[];
  }
  if (r.c !== undefined) {
    if (!isName(r.c)) return undefined;
    record.c = r.c;
  }
  if (r.q !== undefined) {
    if (!Array.isArray(r.q)) return undefined;
    const q: (number | ChatMessage)[] = [];
    for (const item of r.q) {
      const entry = isId(item) ? item : toMessage(item);
      if (entry === undefined) return undefined;
      q.push(entry);
    }
    record.q = q;
  }
  return record;
}

/** A message as the hub made it; unknown keys are dropped, so nothing foreign reaches a client. */
function toMessage(value: unknown): ChatMessage | undefined {
  if (!isObject(value)) return undefined;
  const v = value;
  if (!isId(v.id) || !MESSAGE_TYPES.has(v.type as MessageType)) return undefined;
  if (typeof v.room !== "string" || typeof v.from !== "string" || typeof v.text !== "string") return undefined;
  if (typeof v.ts !== "number" || !Number.isFinite(v.ts)) return undefined;
  if (v.to !== undefined && typeof v.to !== "string") return undefined;
  if (v.missed !== undefined && v.missed !== null && !isCount(v.missed)) return undefined;
  // Keys in their original order, so a restored message serialises as it did before.
  const m: Fields = {};
  for (const key of Object.keys(v)) if (MESSAGE_KEYS.has(key)) m[key] = v[key];
  return m as unknown as ChatMessage;
}

function isObject(value: unknown): value is Fields {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
