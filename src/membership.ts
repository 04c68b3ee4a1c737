import type { Session } from "./session.js";
import { ChatError } from "./errors.js";
import type { HubParts } from "./hub-parts.js";
import type { EndReason } from "./journal.js";
import type { Room } from "./room.js";
import { fallbackRoom } from "./rooms.js";
import { checkRoom } from "./validate.js";

/**
 * Sessions joining and leaving rooms, with the presence notices that say so
 * (only in rooms within --presence-limit), and a session ending: it leaves every room.
 */
export class Membership {
  readonly #parts: HubParts;

  constructor(parts: HubParts) {
    this.#parts = parts;
  }

  /**
   * Joins a room (and makes it current). Presence notices only in rooms within
   * --presence-limit. Past a cap or the join budget it throws with nothing changed;
   * a room the client is in costs nothing.
   */
  join(client: Session, roomName: string): Room {
    const parts = this.#parts;
    const name = checkRoom(roomName);
    let room = parts.rooms.get(name);
    if (!room?.members.has(client) || client.currentRoom !== name) parts.checkWritable();
    if (room?.members.has(client)) {
      // Only a change is news for a store: a poll naming the room it is in changes nothing.
      if (client.currentRoom !== name) {
        client.currentRoom = name;
        parts.record({ kind: "current", session: client, room: name });
      }
      return room;
    }
    parts.rooms.checkJoins(client, [name]);
    client.joinBudget.take();
    client.currentRoom = name;
    room ??= parts.rooms.create(name);
    room.addMember(client);
    client.rooms.add(name);
    parts.record({ kind: "join", session: client, room: name });
    if (room.members.size <= parts.options.presenceLimit) {
      parts.publish({ type: "join", room: name, from: client.name, text: "" }, room.members, room);
    }
    return room;
  }

  /** Leaves one room; the notice reaches the leaver too, as confirmation. */
  leave(client: Session, roomName: string): void {
    this.#parts.checkWritable();
    this.#leave(client, roomName);
  }

  /** A session that ends (expiry too) leaves whether or not a store can write it. */
  #leave(client: Session, roomName: string): void {
    const parts = this.#parts;
    const room = parts.rooms.get(roomName);
    if (!room?.members.has(client)) throw new ChatError("not_in_room");
    if (room.members.size <= parts.options.presenceLimit) {
      parts.publish({ type: "leave", room: room.name, from: client.name, text: "" }, room.members, room);
    }
    room.removeMember(client);
    client.rooms.delete(room.name);
    parts.record({ kind: "leave", session: client, room: room.name });
    // An empty room is forgotten, its history kept (bounded): rooms cannot pile up without members.
    if (room.members.size === 0) parts.rooms.empty(room);
    if (client.currentRoom === room.name) client.currentRoom = fallbackRoom(client.rooms);
  }

  /** Ends a session: leaves its rooms, frees its name and token, wakes its transports so they finish. */
  end(client: Session, reason: EndReason): void {
    if (client.ended) return;
    for (const room of [...client.rooms]) this.#leave(client, room);
    client.ended = true;
    this.#parts.sessions.remove(client);
    this.#parts.record({ kind: "end", session: client, reason });
    client.wake();
  }
}
