import { SessionQueue } from "../session-queue.js";
import { HistoryBudget } from "../history-budget.js";
import { QueueBudget } from "../queue-budget.js";
import type { RestoredSession, RestoredTxn } from "../hub.js";
import { DEFAULT_ROOM, fallbackRoom } from "../rooms.js";
import { Room } from "../room.js";
import { TXN_WINDOW_MS } from "../txn-keys.js";
import { Envelope, type ChatMessage } from "../message.js";
// Rooms as the hub names them; anything else in a log keeps no history.
import { isRoomKey } from "../validate.js";
import { parseRecord, type LogRecord } from "./records.js";

export interface ReplayOptions {
  maxQueue: number;
  /** Bytes one queue holds (--max-queue-bytes). @default no bound but --max-queue */
  maxQueueBytes?: number;
  /** Bytes all queues hold (--max-queued-bytes): the largest queue gives its oldest. @default no bound */
  maxQueuedBytes?: number;
  /** Messages of history kept per room. */
  history: number;
  /** Bytes of history in all rooms (--max-history-bytes): the oldest of all go first. @default no bound but --history */
  maxHistoryBytes?: number;
  now: () => number;
  /** Where a line that is no record goes, byte for byte, as it is met (valid during the call only); without it, badLines collects them. */
  setAside?: (bytes: Buffer) => void;
}

/** Calls `line` with each line of a log, in order (log-reader.ts reads a file so, in bounded memory). */
export type LineFeed = (line: (bytes: Buffer) => void) => void;

/** What a log held: enough to rebuild the hub as it was. */
export interface ReplayResult {
  /** The newest id ever issued (0 for an empty log). */
  lastId: number;
  sessions: RestoredSession[];
  /** Idempotency keys still in their window, oldest first, whether their session lives or not (spec §5). */
  txns: RestoredTxn[];
  /** Kept history of every room, with members or not, oldest first. */
  history: Map<string, Envelope[]>;
  /** Records loaded. */
  records: number;
  /** Lines that were no record (torn by a crash, garbage), byte for byte, to be set aside (when options.setAside takes none). */
  badLines: Buffer[];
  /** Records naming a session or message the log does not hold (follow-ups of a bad line); skipped. */
  unmatched: number;
}

interface SessionState {
  name: string;
  token: string | undefined;
  allowed: string[] | undefined;
  proven: boolean;
  address: string | undefined;
  rooms: Set<string>;
  current: string;
  queue: SessionQueue;
}

const HISTORY_TYPES = new Set(["message", "join", "leave"]);
const NEWLINE = 0x0a;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Rebuilds state from a log's bytes, line by line. A line that is not a
 * record (a tail torn by a crash, garbage) is set aside and the next line
 * read on: one bad line costs that line, never the records after it.
 *
 * Memory: what the state holds (queues, --history per room within
 * --max-history-bytes in all, sessions), never
 * the log's size. A message is looked up by id only from a snapshot's session
 * line, which names messages of the snapshot's hist and env lines: only those
 * are remembered by id.
 */
export function replay(data: Buffer | LineFeed, options: ReplayOptions): ReplayResult {
  const sessions = new Map<string, SessionState>();
  const members = new Map<string, Set<string>>();
  const history = new Map<string, Envelope[]>();
  // Rooms' history as the hub keeps it, in the same budget: a restore holds no more than the server did.
  const budget = new HistoryBudget(options.maxHistoryBytes ?? Infinity);
  // Queues as the hub holds them, in the same caps (its shares per address it applies once it takes them: restore.ts).
  const queues = new QueueBudget({ maxBytes: options.maxQueuedBytes ?? Infinity, maxPerAddress: 0 });
  const rooms = new Map<string, Room>();
  const byId = new Map<number, Envelope>();
  const result: ReplayResult = { lastId: 0, sessions: [], txns: [], history, records: 0, badLines: [], unmatched: 0 };
  // By name key and txn key; a key out of its window is never kept, so this holds only live keys.
  const txns = new Map<string, RestoredTxn>();
  const now = options.now();

  /** `referable`: a snapshot's hist or env line, which a session line after it may name by id. */
  const envelopeOf = (m: ChatMessage, referable: boolean): Envelope => {
    const known = byId.get(m.id);
    if (known) return known;
    const envelope = new Envelope(m);
    if (referable) byId.set(m.id, envelope);
    if (m.id > result.lastId) result.lastId = m.id;
    return envelope;
  };
  const remember = (envelope: Envelope): void => {
    const name = envelope.message.room;
    if (options.history === 0 || !isRoomKey(name)) return;
    let room = rooms.get(name);
    if (!room) rooms.set(name, (room = new Room(name, options.history, budget)));
    room.remember(envelope);
  };
  const membersOf = (room: string): Set<string> => {
    let set = members.get(room);
    if (!set) members.set(room, (set = new Set()));
    return set;
  };
  const session = (key: string): SessionState | undefined => {
    const s = sessions.get(key);
    if (!s) result.unmatched++;
    return s;
  };
  const drop = (key: string): void => {
    const old = sessions.get(key);
    if (!old) return;
    for (const room of old.rooms) members.get(room)?.delete(key);
    queues.detach(old.queue);
    sessions.delete(key);
  };

  const apply = (r: LogRecord): void => {
    switch (r.k) {
      case "head":
        if (r.last > result.lastId) result.lastId = r.last;
        return;
      case "hist":
        remember(envelopeOf(r.m, true));
        return;
      case "env":
        envelopeOf(r.m, true);
        return;
      case "msg": {
        const envelope = envelopeOf(r.m, false);
        if (HISTORY_TYPES.has(r.m.type)) remember(envelope);
        const keys = r.c ?? members.get(r.m.room) ?? [];
        for (const key of keys) {
          const s = session(key);
          s?.queue.push(envelope);
        }
        return;
      }
      case "sess": {
        // A queue's start id was issued too (reserved, never a message's): the sequence continues above it.
        if (r.s > result.lastId) result.lastId = r.s;
        const key = r.n.toLowerCase();
        drop(key);
        const s: SessionState = {
          name: r.n,
          token: r.t,
          allowed: r.a,
          // A line of an older log has neither: unproven, of no address.
          proven: r.p === 1,
          address: r.ip,
          rooms: new Set(r.r ?? []),
          current: r.c ?? DEFAULT_ROOM,
          queue: new SessionQueue(options.maxQueue, r.s, options.now, options.maxQueueBytes),
        };
        queues.attach(s.queue, undefined, key);
        for (const room of s.rooms) membersOf(room).add(key);
        for (const item of r.q ?? []) {
          if (typeof item !== "number") s.queue.push(new Envelope(item));
          else if (byId.has(item)) s.queue.push(byId.get(item)!);
          else result.unmatched++;
        }
        sessions.set(key, s);
        return;
      }
      case "join": {
        const s = session(r.n);
        if (!s) return;
        s.rooms.add(r.r);
        s.current = r.r;
        membersOf(r.r).add(r.n);
        return;
      }
      case "cur": {
        const s = session(r.n);
        if (s) s.current = r.r;
        return;
      }
      case "left": {
        const s = session(r.n);
        if (!s) return;
        s.rooms.delete(r.r);
        members.get(r.r)?.delete(r.n);
        // The hub's rule (rooms.ts): the current room falls back to the last one joined.
        if (s.current === r.r) s.current = fallbackRoom(s.rooms);
        return;
      }
      case "end":
        if (session(r.n)) drop(r.n);
        return;
      case "ack":
        session(r.n)?.queue.ack(r.u);
        return;
      case "txn": {
        // Apart from sessions: a retry after the session ended must still find its key.
        const key = `${r.n.toLowerCase()} ${r.x}`;
        txns.delete(key);
        if (now - r.a < TXN_WINDOW_MS) txns.set(key, [r.n.toLowerCase(), r.x, r.i, r.a, r.p]);
        return;
      }
    }
  };

  const feed = typeof data === "function" ? data : (line: (bytes: Buffer) => void) => eachLine(data, line);
  const setAside = options.setAside ?? ((bytes: Buffer) => result.badLines.push(Buffer.from(bytes)));
  feed((bytes) => {
    if (bytes.length === 0) return;
    const record = decode(bytes);
    if (record === undefined) {
      setAside(bytes);
      return;
    }
    apply(record);
    result.records++;
  });

  for (const [name, room] of rooms) {
    const kept = room.history(Number.MAX_SAFE_INTEGER, Infinity);
    if (kept.length > 0) history.set(name, kept);
  }
  for (const s of sessions.values()) {
    const { name, token, allowed: allowedRooms, proven, address, current: currentRoom, queue } = s;
    result.sessions.push({ name, token, allowedRooms, proven, address, rooms: [...s.rooms], currentRoom, queue });
  }
  result.txns = [...txns.values()].sort((a, b) => a[3] - b[3]);
  return result;
}

function eachLine(data: Buffer, line: (bytes: Buffer) => void): void {
  for (let start = 0; start < data.length; ) {
    let end = data.indexOf(NEWLINE, start);
    if (end === -1) end = data.length;
    line(data.subarray(start, end));
    start = end + 1;
  }
}

function decode(bytes: Buffer): LogRecord | undefined {
  let line: string;
  try {
    line = utf8.decode(bytes);
  } catch {
    return undefined;
  }
  return parseRecord(line);
}
