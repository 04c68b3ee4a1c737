// The session: joining (or resuming after a reload) through the client library, what arrives on it, and its end.

import { connect } from "../client.js";
import { ui } from "./dom.js";
import { setJoining, showJoinFailure, showJoinScreen, describeLostSession } from "./join-screen.js";
import { applyOthersPresence, refreshMembers, renderMembers } from "./members.js";
import { addRoom, applyOwnPresence, loadHistory, refreshRoomList, renderRooms, scheduleRoomListRefresh, switchRoom } from "./rooms.js";
import { forgetSession, saveName, saveSession } from "./saved-session.js";
import { isMe, resetState, state, timeline } from "./state.js";
import { countUnseen, setStatus } from "./status.js";

/** Joins (or, with the token of a session this tab had before a reload, resumes) and opens the chat. */
export async function start(name, rooms, current, token) {
  setJoining(true);
  // The room on screen is joined last: the server's current room (for /who) is then the same.
  rooms = [...new Set([...rooms.filter((r) => r !== current), current ?? rooms[0]])];
  try {
    const chat = await connect(location.origin, { name, token, room: rooms[0] });
    state.chat = chat;
    state.name = chat.name;
    state.rooms = [...chat.rooms];
    // Listening before anything else is awaited: what arrives meanwhile is not lost.
    listen(chat);
    for (const room of rooms.slice(1)) {
      try {
        const r = await chat.join(room);
        addRoom(r.room, r.members);
      } catch {
        // A room that cannot be joined again is simply left out.
      }
    }
    saveName(state.name);
    enterChat(state.rooms.includes(current) ? current : state.rooms[0]);
    void refreshMembers(state.rooms[0]);
    for (const room of state.rooms) void loadHistory(room);
  } catch (error) {
    forgetSession();
    showJoinFailure(error, name);
  } finally {
    setJoining(false);
  }
}

function listen(chat) {
  const mine = (handler) => (...args) => {
    // Events of a chat this page has signed out of are old news.
    if (state.chat === chat) handler(...args);
  };
  chat.on("message", mine(receive));
  chat.on("gap", mine(receiveGap));
  chat.on("state", mine(onState));
  chat.on("session", mine(onSession));
}

function enterChat(room) {
  ui.joinScreen.hidden = true;
  ui.chatScreen.hidden = false;
  ui.meName.textContent = state.name;
  setStatus(state.chat.state === "connected" ? "online" : "connecting");
  switchRoom(room, { tellServer: false });
  void refreshRoomList();
  ui.input.focus();
}

function receive(message) {
  if (!timeline.add(message)) return;
  let roomsChanged = false;
  if (message.type === "join" || message.type === "leave") roomsChanged = isMe(message.from) ? applyOwnPresence(message) : applyOthersPresence(message);
  if (message.type === "message" && message.room !== state.room && state.rooms.includes(message.room) && !isMe(message.from)) {
    state.unread.set(message.room, (state.unread.get(message.room) ?? 0) + 1);
    roomsChanged = true;
  }
  countUnseen(message, isMe(message.from));
  if (roomsChanged) {
    renderRooms();
    scheduleRoomListRefresh();
  }
}

/** The server lost track of us: the page says so where it happened, and room history brings back what it still holds. */
function receiveGap(gap) {
  timeline.add(gap, gap.after);
  for (const room of state.rooms) void loadHistory(room);
}

function onState(chatState, info) {
  if (chatState === "closed") {
    // Closed by the library itself: the session could not be resumed (the name is someone else's now).
    if (info.error) endSession(describeLostSession(info.error, state.name));
    return;
  }
  const status = chatState === "connected" ? "online" : chatState;
  if (status === "online" && state.status === "reconnecting") void refreshRoomList();
  setStatus(status, info);
}

/** The library joined again after the server forgot the session: the same rooms, with fresh member lists and history. */
function onSession(session) {
  for (const room of session.rooms) if (!state.rooms.includes(room)) addRoom(room, []);
  if (!state.room && session.rooms.length > 0) switchRoom(session.rooms.at(-1), { tellServer: false });
  for (const room of state.rooms) {
    void refreshMembers(room);
    void loadHistory(room);
  }
  renderMembers();
  saveSession();
  void refreshRoomList();
}

/** Ends the session on this page; with a reason, the join screen says why. */
export function endSession(reason) {
  const chat = state.chat;
  const name = state.name;
  resetState();
  chat?.close();
  forgetSession();
  showJoinScreen({ name, reason });
}

export function signOut() {
  // Tell the server so the others see us leave; the page does not wait for it.
  void state.chat?.leave().catch(() => {});
  endSession();
}
