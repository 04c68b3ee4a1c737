// The people in the room on screen: the member list, and a click on a name to write to them privately.

import { hueOf, textSpan, ui } from "./dom.js";
import { closeSidebar } from "./layout.js";
import { isMe, state } from "./state.js";

export function renderMembers() {
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

/** Sets a room's members (every page of them: the library follows a join's or GET /api/rooms/R's `next`), and shows them if on screen. */
export function setMembers(room, members) {
  if (!state.rooms.includes(room)) return;
  state.members.set(room, new Set(members));
  if (room === state.room) renderMembers();
}

/** Asks the server who is in a room: after a join by someone else's hand (a typed /join), or a re-join. */
export async function refreshMembers(room) {
  try {
    const r = await state.chat.members(room);
    setMembers(r.name, r.members);
  } catch {
    // Kept as the notices left it.
  }
}

/** A join or leave notice of someone else: the member list follows. Returns whether it changed. */
export function applyOthersPresence(m) {
  const members = state.members.get(m.room);
  if (!members) return false;
  if (m.type === "join") members.add(m.from);
  else members.delete(m.from);
  if (m.room === state.room) renderMembers();
  return true;
}

function dot(name) {
  const d = document.createElement("span");
  d.className = "presence-dot";
  d.setAttribute("aria-hidden", "true");
  d.style.setProperty("--hue", String(hueOf(name)));
  return d;
}

/** Clicking a member: the message box addresses them privately (`@name text`). */
function startPrivate(name) {
  const rest = ui.input.value.replace(/^@[A-Za-z0-9_.-]+\s?/, "");
  ui.input.value = `@${name} ${rest}`;
  closeSidebar();
  ui.input.focus();
  ui.input.setSelectionRange(ui.input.value.length, ui.input.value.length);
}
