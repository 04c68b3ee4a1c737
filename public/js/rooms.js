// Rooms: the ones this session is in (joining, switching, leaving, unread counts) and the others on the server.

import { NAME_PATTERN } from "../client.js";
import { textSpan, ui } from "./dom.js";
import { describeError } from "./errors.js";
import { closeSidebar } from "./layout.js";
import { refreshMembers, renderMembers, setMembers } from "./members.js";
import { saveSession } from "./saved-session.js";
import { state, timeline } from "./state.js";
import { showRoomInTitle } from "./status.js";

/** Messages of room history shown on joining a room, and fetched again after a gap. */
const HISTORY_LIMIT = 100;
/** The room list is also refreshed this often: rooms appear and vanish without notices to us. */
const ROOM_LIST_EVERY_MS = 15_000;

/** Settles once the server agrees which room is on screen: a typed /who must not overtake the switch. */
export let roomSwitch = Promise.resolve();

export function initRooms() {
  ui.roomForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await joinRoom(ui.roomInput.value)) ui.roomInput.value = "";
  });
  setInterval(() => {
    if (state.status === "online" && !document.hidden) void refreshRoomList();
  }, ROOM_LIST_EVERY_MS);
}

export function addRoom(room, members) {
  if (!state.rooms.includes(room)) state.rooms.push(room);
  state.members.set(room, new Set(members));
  saveSession();
  renderRooms();
}

export function dropRoom(room) {
  state.rooms = state.rooms.filter((r) => r !== room);
  state.members.delete(room);
  state.unread.delete(room);
  saveSession();
  if (state.room === room) switchRoom(state.rooms.at(-1), { tellServer: true });
  else renderRooms();
}

/** Our own join or leave notice (a typed /join, another tab of ours): show or drop the room. Returns whether rooms changed. */
export function applyOwnPresence(m) {
  if (m.type === "join" && !state.rooms.includes(m.room)) {
    addRoom(m.room, [state.name]);
    void refreshMembers(m.room);
    void loadHistory(m.room);
    return true;
  }
  if (m.type === "leave" && state.rooms.includes(m.room)) {
    dropRoom(m.room);
    return true;
  }
  return false;
}

export function switchRoom(room, { tellServer = true } = {}) {
  state.room = room;
  if (room) state.unread.delete(room);
  timeline.show(room);
  ui.roomTitle.textContent = room ?? "no room";
  showRoomInTitle();
  ui.input.placeholder = room ? `Message #${room}` : "Join a room to chat";
  ui.input.disabled = !room;
  ui.sendButton.disabled = !room;
  ui.empty.hidden = Boolean(room);
  saveSession();
  renderRooms();
  renderMembers();
  closeSidebar();
  // Makes it the server's current room too (so /who answers for it) and refreshes its members.
  if (room && tellServer && state.chat) {
    roomSwitch = state.chat
      .join(room)
      .then((r) => setMembers(r.room, r.members))
      .catch(() => {});
  }
}

export async function joinRoom(input) {
  const room = input.trim().replace(/^#/, "");
  if (!NAME_PATTERN.test(room)) {
    showRoomError("A room name is 1–32 letters, digits, _ . or - (no spaces).");
    return false;
  }
  const key = room.toLowerCase();
  showRoomError("");
  if (state.rooms.includes(key)) {
    switchRoom(key);
    return true;
  }
  try {
    const r = await state.chat.join(room);
    addRoom(r.room, r.members);
    switchRoom(r.room, { tellServer: false });
    void loadHistory(r.room);
    void refreshRoomList();
    return true;
  } catch (error) {
    showRoomError(`Could not join #${key}: ${describeError(error)}`);
    return false;
  }
}

export async function leaveRoom(room) {
  if (!room) return;
  try {
    await state.chat.leave(room);
  } catch (error) {
    if (error?.code !== "not_in_room") {
      showRoomError(`Could not leave #${room}: ${describeError(error)}`);
      return;
    }
  }
  dropRoom(room);
  void refreshRoomList();
}

export async function loadHistory(room) {
  try {
    // History is for display only: its presence notices are old news for the member list.
    for (const message of await state.chat.history(room, { limit: HISTORY_LIMIT })) timeline.add(message);
  } catch {
    // The room may be gone (its last member left); nothing to show.
  }
}

let roomListTimer;
export function scheduleRoomListRefresh() {
  clearTimeout(roomListTimer);
  roomListTimer = setTimeout(() => void refreshRoomList(), 400);
}

export async function refreshRoomList() {
  if (!state.chat) return;
  try {
    state.allRooms = await state.chat.listRooms();
    renderRooms();
  } catch {
    // Shown again at the next refresh.
  }
}

function showRoomError(message) {
  ui.roomError.textContent = message;
  ui.roomError.hidden = !message;
}

export function renderRooms() {
  ui.myRooms.replaceChildren(
    ...state.rooms.map((room) => {
      const li = document.createElement("li");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "room";
      open.dataset.room = room;
      if (room === state.room) open.setAttribute("aria-current", "true");
      open.append(textSpan("room-name", `# ${room}`));
      const unread = state.unread.get(room);
      if (unread) open.append(textSpan("badge", unread > 99 ? "99+" : String(unread), `${unread} unread`));
      open.addEventListener("click", () => switchRoom(room));
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "icon-button leave";
      leave.textContent = "×";
      leave.title = `Leave #${room}`;
      leave.setAttribute("aria-label", `Leave #${room}`);
      leave.addEventListener("click", () => void leaveRoom(room));
      li.append(open, leave);
      return li;
    }),
  );
  const others = state.allRooms.filter((r) => !state.rooms.includes(r.name));
  ui.otherRoomsHeading.hidden = others.length === 0;
  ui.otherRooms.replaceChildren(
    ...others.map((r) => {
      const li = document.createElement("li");
      const join = document.createElement("button");
      join.type = "button";
      join.className = "room";
      join.dataset.room = r.name;
      join.setAttribute("aria-label", `Join #${r.name} (${r.members} ${r.members === 1 ? "person" : "people"})`);
      join.append(textSpan("room-name", `# ${r.name}`), textSpan("room-count", String(r.members)), textSpan("join-hint", "join"));
      join.addEventListener("click", () => void joinRoom(r.name));
      li.append(join);
      return li;
    }),
  );
}
