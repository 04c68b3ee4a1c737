import type { Session } from "../session.js";
import { SessionQueue } from "../session-queue.js";
import type { Hub } from "../hub.js";
import type { Envelope } from "../message.js";
import type { Room } from "../room.js";
import type { MessageRecord } from "../journal.js";
import { envelopeLine, headLine, historyLine, sessionLine, txnLine } from "./records.js";

/** Where the lines go: LineChunks (Buffers of bounded size), or an array. */
export interface LineSink {
  push(line: string): unknown;
}

const ALL = Number.MAX_SAFE_INTEGER;

/**
 * The hub's state now, as log lines: what a compacted file starts with.
 * Kept: each room's history (--history per room, rooms with members and the
 * empty ones whose history is kept), every message a session's queue still holds,
 * each session with its rooms and queue, idempotency keys in their window.
 * Built synchronously, so it is one consistent moment of the hub.
 *
 * Messages `held` for a batch not yet durable (the journal writes ahead) are written as if
 * delivered: the snapshot replaces their lines, and they are delivered once it
 * is durable.
 */
export function writeSnapshot(lines: LineSink, hub: Hub, now: number, held: readonly MessageRecord[] = []): void {
  lines.push(headLine(hub.lastId));
  const heldFor = heldByTarget(held);
  const written = new Set<number>();
  const writeHistory = (room: Room): void => {
    for (const envelope of asDelivered(room.history(ALL, Infinity), heldFor.rooms.get(room.name), hub.options.history)) {
      lines.push(historyLine(envelope));
      written.add(envelope.id);
    }
  };
  for (const { name } of hub.rooms()) {
    const room = hub.room(name);
    if (room) writeHistory(room);
  }
  for (const room of hub.keptRooms()) writeHistory(room);
  for (const client of hub.sessions()) {
    if (!client.resumable) continue;
    const extra = heldFor.clients.get(client);
    const queue = extra ? queueAsDelivered(client, extra, hub.options) : client.queue.peek();
    for (const envelope of queue) {
      // A gap is written inline in its session: its id is that of a real message.
      if (envelope.message.type === "gap" || written.has(envelope.id)) continue;
      lines.push(envelopeLine(envelope));
      written.add(envelope.id);
    }
    lines.push(sessionLine(client, queue));
  }
  // Apart from sessions: a key outlives the session that used it (spec §5).
  for (const [key, txn, id, at, address] of hub.txnKeys(now)) lines.push(txnLine(key, txn, id, at, address));
}

function heldByTarget(held: readonly MessageRecord[]): { rooms: Map<string, Envelope[]>; clients: Map<Session, Envelope[]> } {
  const rooms = new Map<string, Envelope[]>();
  const clients = new Map<Session, Envelope[]>();
  for (const { envelope, recipients, room } of held) {
    if (room) append(rooms, room.name, envelope);
    for (const client of recipients) append(clients, client, envelope);
  }
  return { rooms, clients };
}

function append<K>(map: Map<K, Envelope[]>, key: K, envelope: Envelope): void {
  const list = map.get(key);
  if (list) list.push(envelope);
  else map.set(key, [envelope]);
}

/** A room's history once the held messages are in it, within --history (as Room.remember keeps it). */
function asDelivered(history: readonly Envelope[], extra: readonly Envelope[] | undefined, limit: number): readonly Envelope[] {
  if (!extra) return history;
  return limit === 0 ? [] : [...history, ...extra].slice(-limit);
}

/** A client's queue once the held messages are pushed onto it, with the gap its bound makes (a copy: the live queue waits). */
function queueAsDelivered(client: Session, extra: readonly Envelope[], caps: { maxQueue: number; maxQueueBytes: number }): Envelope[] {
  const copy = new SessionQueue(caps.maxQueue, client.queue.since, Date.now, caps.maxQueueBytes);
  for (const envelope of client.queue.peek()) copy.push(envelope);
  for (const envelope of extra) copy.push(envelope);
  return copy.peek();
}
