// Remembering the session across a reload of this tab, and the name for next time.

import { state } from "./state.js";

const SESSION_KEY = "pollchat.session";
const NAME_KEY = "pollchat.name";

export function saveSession() {
  if (!state.name || !state.chat) return;
  // Per tab, so a reload resumes this tab's session and nothing else's.
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ name: state.name, token: state.chat.token, rooms: state.rooms, room: state.room }));
}

export function forgetSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** This tab's session before a reload: { name, token, rooms, room }, or undefined. */
export function savedSession() {
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    return undefined;
  }
  if (!saved || typeof saved.name !== "string" || !Array.isArray(saved.rooms) || saved.rooms.length === 0) return undefined;
  return { name: saved.name, rooms: saved.rooms, room: saved.room, token: typeof saved.token === "string" ? saved.token : undefined };
}

export function saveName(name) {
  localStorage.setItem(NAME_KEY, name);
}

export function savedName() {
  return localStorage.getItem(NAME_KEY) ?? "";
}
