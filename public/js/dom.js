// The page's elements, looked up once.

const $ = (id) => document.getElementById(id);

export const ui = {
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

/** A span (or other element) holding text, never HTML; with a label, one for screen readers and the tooltip. */
export function textSpan(className, text, label, tag = "span") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  if (label) {
    node.setAttribute("aria-label", label);
    node.title = label;
  }
  return node;
}

/** A stable colour per name, so people are told apart at a glance. */
export function hueOf(name) {
  let hash = 0;
  for (const ch of name.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}
