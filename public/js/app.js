// The chat page: joins, long-polls, sends, and keeps rooms and people in view.
// The server is the source of truth; this file only wires it to the DOM.

import { Api, ApiError } from "./api.js";
import { Outbox } from "./outbox.js";
import { Poller } from "./poller.js";
import { Timeline } from "./timeline.js";

const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;
/** Messages of room history shown on joining a room, and fetched again after a gap. */
const HISTORY_LIMIT = 100;
/** The room list is also refreshed this often: rooms appear and vanish without notices to us. */
const ROOM_LIST_EVERY_MS = 15_000;
const SESSION_KEY = "pollchat.session";
const NAME_KEY = "pollchat.name";

const $ = (id) => document.getElementById(id);
const ui = {
  joinScreen: $("join-screen"),
  joinForm: $("join-form"),
  joinName: $("join-name"),
  joinRoom: $("join-room"),
  joinError: $("join-error"),
  joinButton: $("join-button"),
  chatScreen: $("chat-screen"),
  sidebar: $("sidebar"),
  sidebarToggle: $("sidebar-toggle"),
  roomTitle: $("room-title"),
  status: $("status"),
  statusText: $("status-text"),
  meName: $("me-name"),
  signOut: $("sign-out"),
  myRooms: $("my-rooms"),
  otherRooms: $("other-rooms"),
  otherRoomsHeading: $("other-rooms-heading"),
  roomForm: $("room-form"),
  roomInput: $("room-input"),
  roomError: $("room-error"),
  members: $("members"),
  memberCount: $("member-count"),
  banner: $("banner"),
  bannerText: $("banner-text"),
  retryNow: $("retry-now"),
  log: $("log"),
  empty: $("empty"),
  composer: $("composer"),
  input: $("message-input"),
  sendButton: $("send-button"),
};

const api = new Api();

const state = {
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
  status: "offline",
  unseenWhileHidden: 0,
};

const isMe = (name) => state.name !== undefined && typeof name === "string" && name.toLowerCase() === state.name.toLowerCase();

const timeline = new Timeline(ui.log, { isMe });

const poller = new Poller({
  api,
  onMessages: receive,
  onStatus: setStatus,
  recover,
});

/** Settles once the server agrees which room is on screen: a typed /who must not overtake the switch. */
let roomSwitch = Promise.resolve();

const outbox = new Outbox({
  api: {
    post: async (text, room, txn) => {
      await roomSwitch;
      return api.post(text, room, txn);
    },
  },
  recover,
  onSent: (item, id) => timeline.confirmPending(item, id),
  onFailed: (item, error) => timeline.failPending(item, describeError(error)),
});

// ---------------------------------------------------------------- joining

ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.joinName.value.trim();
  const room = ui.joinRoom.value.trim() || "lobby";
  if (!name) return showJoinError("Please enter a name.", ui.joinName);
  void start(name, [room], room);
});

/** Joins (or, with the token of a session this tab had before a reload, resumes) and opens the chat. */
async function start(name, rooms, current, token) {
  showJoinError("");
  ui.joinButton.disabled = true;
  ui.joinButton.textContent = "Joining…";
  // The room on screen is joined last: the server's current room (for /who) is then the same.
  rooms = [...new Set([...rooms.filter((r) => r !== current), current ?? rooms[0]])];
  try {
    api.token = token;
    const first = await api.join(name, rooms[0]);
    api.token = first.token;
    state.name = first.name;
    state.rooms = [first.room];
    state.members.set(first.room, new Set(first.members));
    for (const room of rooms.slice(1)) {
      try {
        const r = await api.join(state.name, room);
        addRoom(r.room, r.members);
      } catch {
        // A room that cannot be joined again is simply left out.
      }
    }
    localStorage.setItem(NAME_KEY, state.name);
    enterChat(state.rooms.includes(current) ? current : first.room);
    poller.start(first.cursor);
    for (const room of state.rooms) void loadHistory(room);
  } catch (error) {
    sessionStorage.removeItem(SESSION_KEY);
    showJoinError(describeJoinError(error, name), error?.code === "invalid_room" ? ui.joinRoom : ui.joinName);
  } finally {
    ui.joinButton.disabled = false;
    ui.joinButton.textContent = "Join chat";
  }
}

function describeJoinError(error, name) {
  if (!(error instanceof ApiError)) return "Cannot reach the server. Check your connection and try again.";
  switch (error.code) {
    case "name_taken":
      return `The name “${name}” is taken. Please choose another one.`;
    case "invalid_name":
      return "That name is not allowed: use 1–32 letters, digits, _ . or - (no spaces).";
    case "invalid_room":
      return "That room name is not allowed: use 1–32 letters, digits, _ . or - (no spaces).";
    default:
      return error.message;
  }
}

function showJoinError(message, field) {
  ui.joinError.textContent = message;
  ui.joinError.hidden = !message;
  for (const input of [ui.joinName, ui.joinRoom]) input.removeAttribute("aria-invalid");
  if (message && field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
    field.select();
  }
}

function enterChat(room) {
  ui.joinScreen.hidden = true;
  ui.chatScreen.hidden = false;
  ui.meName.textContent = state.name;
  setStatus("connecting");
  switchRoom(room, { tellServer: false });
  void refreshRoomList();
  ui.input.focus();
}

/** Ends the session on this page; with a reason, the join screen says why. */
function endSession(reason) {
  poller.stop();
  outbox.clear();
  timeline.clear();
  api.token = undefined;
  const name = state.name;
  Object.assign(state, { name: undefined, rooms: [], room: undefined, allRooms: [], status: "offline" });
  state.members.clear();
  state.unread.clear();
  sessionStorage.removeItem(SESSION_KEY);
  ui.chatScreen.hidden = true;
  ui.joinScreen.hidden = false;
  document.title = "pollchat";
  if (name) ui.joinName.value = name;
  showJoinError(reason ?? "", reason ? ui.joinName : undefined);
  if (!reason) ui.joinName.focus();
}

ui.signOut.addEventListener("click", () => {
  // Tell the server so the others see us leave; the page does not wait for it.
  void api.leave().catch(() => {});
  endSession();
});

// ---------------------------------------------------------------- recovering

let recovering;

/**
 * A 401: the server no longer knows our token (it restarted without --data-dir, or the
 * session expired). Join again with the same name and rooms; the poller then resumes with
 * its old cursor, the server answers with a gap, and room history fills in what it can.
 */
function recover(error) {
  if (error?.usedToken !== api.token || state.name === undefined) return Promise.resolve();
  const name = state.name;
  recovering ??= restore()
    .catch((restoreError) => {
      // Refused, not unreachable: someone else has the name now, or the server will not take us. Say so.
      if (restoreError instanceof ApiError && restoreError.status >= 400 && restoreError.status < 500) {
        endSession(
          restoreError.code === "name_taken"
            ? `Your session ended, and the name “${name}” is now used by someone else. Please choose another one.`
            : `Your session ended and could not be resumed: ${restoreError.message}`,
        );
      }
      throw restoreError;
    })
    .finally(() => {
      recovering = undefined;
    });
  return recovering;
}

async function restore() {
  setStatus("reconnecting", { rejoining: true });
  const current = state.room;
  const rooms = state.rooms.length > 0 ? [...state.rooms.filter((r) => r !== current), ...(current ? [current] : [])] : ["lobby"];
  // The current room last: it is where the server's /who and plain posts then point.
  for (const room of rooms) {
    const r = await api.join(state.name, room);
    api.token = r.token;
    addRoom(r.room, r.members);
  }
  if (!state.room) switchRoom(rooms[rooms.length - 1], { tellServer: false });
  renderMembers();
  for (const room of state.rooms) void loadHistory(room);
  void refreshRoomList();
}

/** Joins a room on the server; if that answer carries a new token, our session had been lost: bring the rest back. */
async function joinOnServer(room) {
  const before = api.token;
  const r = await api.join(state.name, room);
  if (r.token !== before) {
    api.token = r.token;
    if (before !== undefined) recover({ usedToken: r.token }).catch(() => {});
  }
  return r;
}

// ---------------------------------------------------------------- receiving

function receive(messages, requestCursor) {
  let gap = false;
  let roomsChanged = false;
  for (const message of messages) {
    if (!timeline.add(message, requestCursor)) continue;
    if (message.type === "gap") gap = true;
    if (message.type === "join" || message.type === "leave") roomsChanged = applyPresence(message) || roomsChanged;
    if (message.type === "message" && message.room !== state.room && state.rooms.includes(message.room) && !isMe(message.from)) {
      state.unread.set(message.room, (state.unread.get(message.room) ?? 0) + 1);
      roomsChanged = true;
    }
    if (document.hidden && (message.type === "message" || message.type === "private") && !isMe(message.from)) {
      state.unseenWhileHidden++;
      document.title = `(${state.unseenWhileHidden}) #${state.room ?? ""} · pollchat`;
    }
  }
  // A gap means the server lost track of us: room history brings back what it still holds.
  if (gap) for (const room of state.rooms) void loadHistory(room);
  if (roomsChanged) {
    renderRooms();
    scheduleRoomListRefresh();
  }
}

/** Keeps member lists and our own rooms in step with join/leave notices. Returns whether rooms changed. */
function applyPresence(m) {
  const room = m.room;
  if (isMe(m.from)) {
    if (m.type === "join" && !state.rooms.includes(room)) {
      // Joined elsewhere (a typed /join, another tab): show the room too.
      addRoom(room, [state.name]);
      void refreshMembers(room);
      void loadHistory(room);
      return true;
    }
    if (m.type === "leave" && state.rooms.includes(room)) {
      dropRoom(room);
      return true;
    }
    return false;
  }
  const members = state.members.get(room);
  if (!members) return false;
  if (m.type === "join") members.add(m.from);
  else members.delete(m.from);
  if (room === state.room) renderMembers();
  return true;
}

async function loadHistory(room) {
  try {
    const { messages } = await api.history(room, HISTORY_LIMIT);
    // History is for display only: its presence notices are old news for the member list.
    for (const message of messages) timeline.add(message);
  } catch {
    // The room may be gone (its last member left); nothing to show.
  }
}

// ---------------------------------------------------------------- status

function setStatus(status, detail = {}) {
  if (status === "online" && state.status !== "online") {
    // Back: whatever waits to be sent goes now instead of at the end of its backoff.
    outbox.retryNow();
    if (state.status === "reconnecting") void refreshRoomList();
  }
  state.status = status;
  ui.status.dataset.state = status;
  ui.statusText.textContent = status === "online" ? "connected" : status === "reconnecting" ? "reconnecting…" : "connecting…";
  ui.banner.hidden = status !== "reconnecting";
  ui.chatScreen.classList.toggle("is-reconnecting", status === "reconnecting");
  if (status === "reconnecting") {
    ui.bannerText.textContent = detail.rejoining
      ? "The server forgot this session (it restarted?). Joining again…"
      : `Connection lost. Reconnecting…${detail.attempt > 1 ? ` (attempt ${detail.attempt})` : ""}`;
  }
}

ui.retryNow.addEventListener("click", () => {
  poller.retryNow();
  outbox.retryNow();
});
window.addEventListener("online", () => {
  poller.retryNow();
  outbox.retryNow();
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  state.unseenWhileHidden = 0;
  if (state.room) document.title = `#${state.room} · pollchat`;
});

// ---------------------------------------------------------------- rooms

function addRoom(room, members) {
  if (!state.rooms.includes(room)) state.rooms.push(room);
  state.members.set(room, new Set(members));
  saveSession();
  renderRooms();
}

function dropRoom(room) {
  state.rooms = state.rooms.filter((r) => r !== room);
  state.members.delete(room);
  state.unread.delete(room);
  saveSession();
  if (state.room === room) switchRoom(state.rooms.at(-1), { tellServer: true });
  else renderRooms();
}

function switchRoom(room, { tellServer = true } = {}) {
  state.room = room;
  if (room) state.unread.delete(room);
  timeline.show(room);
  ui.roomTitle.textContent = room ?? "no room";
  document.title = room ? `#${room} · pollchat` : "pollchat";
  ui.input.placeholder = room ? `Message #${room}` : "Join a room to chat";
  ui.input.disabled = !room;
  ui.sendButton.disabled = !room;
  ui.empty.hidden = Boolean(room);
  saveSession();
  renderRooms();
  renderMembers();
  closeSidebar();
  // Makes it the server's current room too (so /who answers for it) and refreshes its members.
  if (room && tellServer) {
    roomSwitch = joinOnServer(room)
      .then((r) => {
        state.members.set(r.room, new Set(r.members));
        if (r.room === state.room) renderMembers();
      })
      .catch(() => {});
  }
}

async function joinRoom(input) {
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
    const r = await joinOnServer(room);
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

async function leaveRoom(room) {
  if (!room) return;
  try {
    await api.leave(room);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "not_in_room")) {
      showRoomError(`Could not leave #${room}: ${describeError(error)}`);
      return;
    }
  }
  dropRoom(room);
  void refreshRoomList();
}

function showRoomError(message) {
  ui.roomError.textContent = message;
  ui.roomError.hidden = !message;
}

ui.roomForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (await joinRoom(ui.roomInput.value)) ui.roomInput.value = "";
});

let roomListTimer;
function scheduleRoomListRefresh() {
  clearTimeout(roomListTimer);
  roomListTimer = setTimeout(() => void refreshRoomList(), 400);
}

async function refreshRoomList() {
  if (!state.name) return;
  try {
    const { rooms } = await api.rooms();
    state.allRooms = Array.isArray(rooms) ? rooms : [];
    renderRooms();
  } catch {
    // Shown again at the next refresh.
  }
}
setInterval(() => {
  if (state.status === "online" && !document.hidden) void refreshRoomList();
}, ROOM_LIST_EVERY_MS);

async function refreshMembers(room) {
  try {
    const r = await api.room(room);
    if (!state.rooms.includes(r.name)) return;
    state.members.set(r.name, new Set(r.members));
    if (r.name === state.room) renderMembers();
  } catch {
    // Kept as the notices left it.
  }
}

function renderRooms() {
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

function renderMembers() {
  const names = [...(state.members.get(state.room) ?? [])].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
  ui.memberCount.textContent = names.length ? `(${names.length})` : "";
  ui.members.replaceChildren(
    ...names.map((name) => {
      const li = document.createElement("li");
      if (isMe(name)) {
        const self = textSpan("member self", `${name} (you)`);
        self.prepend(dot(name));
        li.append(self);
        return li;
      }
      const button = document.createElement("button");
      button.type = "button";
      button.className = "member";
      button.dataset.name = name;
      button.title = `Send a private message to ${name}`;
      button.setAttribute("aria-label", `Private message to ${name}`);
      button.append(dot(name), textSpan("member-name", name));
      button.addEventListener("click", () => startPrivate(name));
      li.append(button);
      return li;
    }),
  );
}

function dot(name) {
  const d = document.createElement("span");
  d.className = "presence-dot";
  d.setAttribute("aria-hidden", "true");
  let hash = 0;
  for (const ch of name.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  d.style.setProperty("--hue", String(hash % 360));
  return d;
}

function textSpan(className, text, label) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  if (label) {
    s.setAttribute("aria-label", label);
    s.title = label;
  }
  return s;
}

/** Clicking a member: the message box addresses them privately (`@name text`). */
function startPrivate(name) {
  const rest = ui.input.value.replace(/^@[A-Za-z0-9_.-]+\s?/, "");
  ui.input.value = `@${name} ${rest}`;
  closeSidebar();
  ui.input.focus();
  ui.input.setSelectionRange(ui.input.value.length, ui.input.value.length);
}

// ---------------------------------------------------------------- sending

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  sendFromComposer();
});

ui.input.addEventListener("keydown", (event) => {
  // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition does neither.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendFromComposer();
  }
});

function sendFromComposer() {
  const text = ui.input.value;
  if (!text.trim() || !state.room) return;
  ui.input.value = "";
  const command = /^\/(join|leave)(?:\s+(\S+))?\s*$/i.exec(text.trim());
  // /join and /leave change what the page shows, so the page does them itself; other commands go to the server.
  if (command?.[1].toLowerCase() === "join" && command[2]) return void joinRoom(command[2]);
  if (command?.[1].toLowerCase() === "leave" && !command[2]) return void leaveRoom(state.room);
  const item = outbox.send(text, state.room);
  timeline.addPending(item);
}

// ---------------------------------------------------------------- layout

ui.sidebarToggle.addEventListener("click", () => {
  const open = ui.sidebarToggle.getAttribute("aria-expanded") !== "true";
  ui.sidebarToggle.setAttribute("aria-expanded", String(open));
  ui.chatScreen.classList.toggle("sidebar-open", open);
});

function closeSidebar() {
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  ui.chatScreen.classList.remove("sidebar-open");
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeSidebar();
});

// ---------------------------------------------------------------- errors, storage, start

function describeError(error) {
  if (!(error instanceof ApiError)) return "the server cannot be reached";
  switch (error.code) {
    case "unknown_recipient":
      return error.message;
    case "rate_limited":
      return "too many messages, slow down";
    case "message_too_long":
      return error.message;
    case "not_in_room":
      return "you are not in that room";
    default:
      return error.message;
  }
}

function saveSession() {
  if (!state.name) return;
  // Per tab, so a reload resumes this tab's session and nothing else's.
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ name: state.name, token: api.token, rooms: state.rooms, room: state.room }));
}

function boot() {
  ui.joinName.value = localStorage.getItem(NAME_KEY) ?? "";
  // A reload of this tab: its token still names the session, so resume it without asking.
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    saved = null;
  }
  if (saved && typeof saved.name === "string" && Array.isArray(saved.rooms) && saved.rooms.length > 0) {
    void start(saved.name, saved.rooms, saved.room, typeof saved.token === "string" ? saved.token : undefined);
    return;
  }
  (ui.joinName.value ? ui.joinRoom : ui.joinName).focus();
}

boot();
