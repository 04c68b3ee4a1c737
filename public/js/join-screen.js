// The join screen: the form, and saying clearly why a join did not work.

import { ClientError } from "../client.js";
import { ui } from "./dom.js";

/** Calls onJoin(name, room) when the form is sent with a name. */
export function initJoinScreen(onJoin) {
  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = ui.joinName.value.trim();
    const room = ui.joinRoom.value.trim() || "lobby";
    if (!name) return showJoinError("Please enter a name.", ui.joinName);
    onJoin(name, room);
  });
}

export function setJoining(busy) {
  ui.joinButton.disabled = busy;
  ui.joinButton.textContent = busy ? "Joining…" : "Join chat";
}

export function showJoinScreen({ name, reason } = {}) {
  ui.chatScreen.hidden = true;
  ui.joinScreen.hidden = false;
  document.title = "pollchat";
  if (name) ui.joinName.value = name;
  showJoinError(reason ?? "", reason ? ui.joinName : undefined);
  if (!reason) ui.joinName.focus();
}

/** A join that failed: says why, on the field at fault. */
export function showJoinFailure(error, name) {
  showJoinError(describeJoinError(error, name), error?.code === "invalid_room" ? ui.joinRoom : ui.joinName);
}

/** Why the session ended on its own (after a restart the name was taken, the server refused us). */
export function describeLostSession(error, name) {
  return error?.code === "name_taken"
    ? `Your session ended, and the name “${name}” is now used by someone else. Please choose another one.`
    : `Your session ended and could not be resumed: ${error?.message ?? "unknown reason"}`;
}

function describeJoinError(error, name) {
  if (!(error instanceof ClientError) || error.status === 0) return "Cannot reach the server. Check your connection and try again.";
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
