// The connection as the page shows it: the status in the header, the reconnecting banner, and the tab's title.

import { ui } from "./dom.js";
import { state } from "./state.js";

/** Shows the chat's state: "connecting" | "online" | "reconnecting", with what came with it (attempt, rejoining). */
export function setStatus(status, detail = {}) {
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

/** The tab's title names the room, and counts what arrived while the tab was hidden. */
export function showRoomInTitle() {
  document.title = state.room ? `#${state.room} · pollchat` : "pollchat";
}

export function countUnseen(message, fromMe) {
  if (!document.hidden || fromMe || (message.type !== "message" && message.type !== "private")) return;
  state.unseenWhileHidden++;
  document.title = `(${state.unseenWhileHidden}) #${state.room ?? ""} · pollchat`;
}

export function initStatus() {
  ui.retryNow.addEventListener("click", () => state.chat?.retryNow());
  window.addEventListener("online", () => state.chat?.retryNow());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    state.unseenWhileHidden = 0;
    if (state.room) showRoomInTitle();
  });
}
