// The message box: Enter sends through the client library, shown as "sending…" until the server's copy comes back.

import { ui } from "./dom.js";
import { describeError } from "./errors.js";
import { joinRoom, leaveRoom, roomSwitch } from "./rooms.js";
import { state, timeline } from "./state.js";

export function initComposer() {
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
}

function sendFromComposer() {
  const text = ui.input.value;
  const chat = state.chat;
  if (!text.trim() || !state.room || !chat) return;
  ui.input.value = "";
  const command = /^\/(join|leave)(?:\s+(\S+))?\s*$/i.exec(text.trim());
  // /join and /leave change what the page shows, so the page does them itself; other commands go to the server.
  if (command?.[1].toLowerCase() === "join" && command[2]) return void joinRoom(command[2]);
  if (command?.[1].toLowerCase() === "leave" && !command[2]) return void leaveRoom(state.room);
  const item = { text, room: state.room, id: undefined };
  timeline.addPending(item);
  // The library sends in order and retries (one txn per send) until the server has it: one id, never a double.
  void roomSwitch
    .then(() => chat.send(text, { room: item.room }))
    .then(
      (id) => timeline.confirmPending(item, id),
      (error) => {
        if (state.chat === chat) timeline.failPending(item, describeError(error));
      },
    );
}
