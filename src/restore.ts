import { Session } from "./session.js";
import type { HubParts } from "./hub-parts.js";
import type { RestoredSession, RestoredTxn } from "./hub-types.js";
import type { Envelope } from "./message.js";
import { fallbackRoom } from "./rooms.js";

/**
 * Puts back what a store saved, before serving: sessions with their queues
 * and rooms, and the history of every room (kept for those without members). Records
 * nothing, so a store does not log it again. Each session gets a fresh --session-ttl to come back.
 * Never more than the caps (they may have been lowered since): a session keeps
 * the --max-rooms-per-session rooms it joined last, and no room is made past --max-rooms.
 * Idempotency keys come back apart from sessions: a key of a session that ended still counts.
 */
export function restore(
  parts: HubParts,
  sessions: Iterable<RestoredSession>,
  history: ReadonlyMap<string, readonly Envelope[]>,
  txns: Iterable<RestoredTxn>,
): void {
  const { options, rooms } = parts;
  const now = parts.now();
  for (const s of sessions) {
    const allowedRooms = s.allowedRooms === undefined ? undefined : new Set(s.allowedRooms);
    const client = new Session({
      name: s.name,
      token: s.token,
      room: s.currentRoom,
      queue: s.queue,
      newBucket: parts.newBucket,
      now,
      allowedRooms,
      resumable: s.resumable,
      address: s.address,
      proven: s.proven,
    });
    parts.sessions.add(client);
    for (const name of s.rooms.slice(-options.maxRoomsPerSession)) {
      // Its rooms claim holds after a restart too: a log edited by hand grants no room the JWT did not.
      if (allowedRooms?.has(name) === false) continue;
      let room = rooms.get(name);
      if (!room) {
        if (rooms.size >= options.maxRooms) continue;
        room = rooms.create(name);
        for (const envelope of history.get(name) ?? []) room.remember(envelope);
      }
      room.addMember(client);
      client.rooms.add(name);
    }
    // As after a leave: a current room it no longer is in falls back to the last one kept.
    if (!client.rooms.has(client.currentRoom) && s.rooms.includes(client.currentRoom)) {
      client.currentRoom = fallbackRoom(client.rooms);
    }
  }
  for (const [name, envelopes] of history) if (!rooms.get(name)) rooms.keepHistory(name, envelopes);
  for (const [key, txn, id, at, address] of txns) parts.txns.remember(key, txn, id, at, now, address);
}
