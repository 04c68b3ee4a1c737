import type { Session } from "../session.js";
import type { Room } from "../room.js";
import type { RoomPage } from "../rooms.js";

/** How many rooms the /rooms answer names; the rest are counted ("and N more"). GET /api/rooms pages through all. */
export const ROOMS_IN_ANSWER = 50;
/** How many members the /who answer names; the rest are counted. GET /api/rooms/R pages through all. */
export const MEMBERS_IN_ANSWER = 50;

/** What a command may do to the hub. */
export interface CommandHub {
  join(client: Session, room: string): Room;
  leave(client: Session, room: string): void;
  room(name: string): Room | undefined;
  roomsPage(after: string | undefined, limit: number): RoomPage;
  readonly roomCount: number;
}

/**
 * Runs a chat command (spec §2: /who, /rooms, /join R, /leave) and returns the
 * answer for the asker alone. A join past a cap throws with nothing changed.
 */
export function runCommand(hub: CommandHub, client: Session, command: string, argument: string): string {
  switch (command) {
    case "who": {
      const room = hub.room(client.currentRoom);
      if (!room?.members.has(client)) return "you are in no room";
      return whoAnswer(room.name, room.membersPage(undefined, MEMBERS_IN_ANSWER).members, room.members.size);
    }
    case "rooms":
      return roomsAnswer(hub.roomsPage(undefined, ROOMS_IN_ANSWER).rooms, hub.roomCount);
    case "join":
      return `you are in ${hub.join(client, argument).name}`;
    case "leave": {
      const room = client.currentRoom;
      if (!client.rooms.has(room)) return "you are in no room";
      hub.leave(client, room);
      return `you left ${room}`;
    }
    default:
      return `unknown command /${command}; try /who, /rooms, /join ROOM, /leave, @NAME TEXT`;
  }
}

/** The /who answer: the first members in name order and how many more there are, so one answer stays small (it is queued for the asker). */
export function whoAnswer(room: string, names: readonly string[], total: number): string {
  const more = total - names.length;
  return `members of ${room}: ${names.join(", ")}${more > 0 ? `, and ${more} more` : ""}`;
}

/** The /rooms answer: the first rooms in name order and how many more there are, so one answer stays small. */
export function roomsAnswer(rooms: readonly { name: string; members: number }[], total: number): string {
  if (rooms.length === 0) return "rooms: none";
  const more = total - rooms.length;
  return `rooms: ${rooms.map((r) => `${r.name} (${r.members})`).join(", ")}${more > 0 ? `, and ${more} more` : ""}`;
}
