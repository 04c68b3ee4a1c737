// What the page knows; the server is the source of truth, the client library the way to it.

import { ui } from "./dom.js";
import { Timeline } from "./timeline.js";

export const state = {
  /** The connected chat (pollchat/client), undefined while not in a session. */
  chat: undefined,
  /** The name as the server spelled it; undefined while not in a session. */
  name: undefined,
  /** Rooms this session is in, in the order joined. */
  rooms: [],
  /** The room on screen (undefined when in none). */
  room: undefined,
  /** Room name -> Set of member names, for rooms we are in. */
  members: new Map(),
  /** Room name -> unread count, for rooms not on screen. */
  unread: new Map(),
  /** What GET /api/rooms said last. */
  allRooms: [],
  /** "offline" | "connecting" | "online" | "reconnecting" */
  status: "offline",
  unseenWhileHidden: 0,
};

export const isMe = (name) => state.name !== undefined && typeof name === "string" && name.toLowerCase() === state.name.toLowerCase();

export const timeline = new Timeline(ui.log, { isMe });

/** Forgets the session's part of the state (signing out). */
export function resetState() {
  Object.assign(state, { chat: undefined, name: undefined, rooms: [], room: undefined, allRooms: [], status: "offline", unseenWhileHidden: 0 });
  state.members.clear();
  state.unread.clear();
  timeline.clear();
}
