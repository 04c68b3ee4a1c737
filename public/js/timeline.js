// Every message the page has, deduplicated by id and kept in id order, and
// the log that shows the current room's share of them. User text only ever
// reaches the DOM through textContent.

/** Shown in whichever room is open: they belong to the person, not to a room. */
const PERSONAL_TYPES = new Set(["private", "system", "gap"]);
/** The page keeps this many messages; older ones leave memory and the log. */
const MAX_ENTRIES = 5000;
/** Closer than this to the bottom, the log follows new messages. */
const STICKY_PX = 120;

export class Timeline {
  #log;
  #isMe;
  #room = undefined;
  /** Sorted by `key` (the id, except gaps: see add()). */
  #entries = [];
  #byId = new Map();
  /** Posts not yet seen coming back, shown after everything else in their room. */
  #pending = [];
  /** Each shown element's sort key, for inserting in order. */
  #keys = new WeakMap();

  constructor(log, { isMe }) {
    this.#log = log;
    this.#isMe = isMe;
  }

  get room() {
    return this.#room;
  }


  /** Visible in the log of `room`. */
  belongsTo(message, room) {
    return message.room === room || PERSONAL_TYPES.has(message.type);
  }

  /** Shows another room (or none): the log is rebuilt without announcing the old messages again. */
  show(room) {
    this.#room = room;
    this.#log.setAttribute("aria-busy", "true");
    const fragment = document.createDocumentFragment();
    for (const entry of this.#entries) {
      if (!this.belongsTo(entry.message, room)) continue;
      entry.element ??= this.#render(entry.message);
      this.#keys.set(entry.element, entry.key);
      fragment.append(entry.element);
    }
    for (const item of this.#pending) if (item.room === room) fragment.append(item.element);
    this.#log.replaceChildren(fragment);
    this.#log.scrollTop = this.#log.scrollHeight;
    // Announcements resume once the rebuilt log has settled.
    requestAnimationFrame(() => this.#log.setAttribute("aria-busy", "false"));
  }

  /**
   * Adds a message unless its id is known; returns whether it was new.
   * A gap is placed where the page lost track (`afterId`: the cursor it polled with), not at its own id,
   * so what the page recovers from room history afterwards shows below the notice.
   */
  add(message, afterId) {
    if (!Number.isSafeInteger(message?.id)) return false;
    const idKey = idKeyOf(message);
    if (this.#byId.has(idKey)) return false;
    const key = message.type === "gap" && afterId > 0 ? afterId + 0.5 : message.id;
    const entry = { key, message, element: undefined };
    this.#byId.set(idKey, entry);
    let at = this.#entries.length;
    while (at > 0 && this.#entries[at - 1].key > key) at--;
    this.#entries.splice(at, 0, entry);
    this.#settlePending(message.id);
    if (this.#entries.length > MAX_ENTRIES) this.#forget(this.#entries.shift());
    if (this.belongsTo(message, this.#room)) this.#insert(entry);
    return true;
  }

  /** Shows a post as "sending…" until the server's copy arrives. */
  addPending(item) {
    item.element = this.#render({ id: 0, type: "message", room: item.room, from: "", text: item.text, ts: Date.now() }, "pending");
    this.#pending.push(item);
    if (item.room === this.#room) this.#stick(() => this.#log.append(item.element), true);
  }

  /** The server took the post as `id`: drop the stand-in if its copy is here already, else mark it sent. */
  confirmPending(item, id) {
    item.id = id;
    const isCommand = item.text.startsWith("/");
    if (this.#byId.has(id) || isCommand) return this.#dropPending(item);
    item.element.classList.replace("pending", "sent");
    item.element.querySelector(".state").textContent = "sent";
  }

  failPending(item, reason) {
    item.element.classList.replace("pending", "failed");
    item.element.querySelector(".state").textContent = `not sent: ${reason}`;
    // A failed post stays visible (nothing vanishes silently) but no longer waits for a copy.
    item.id = -1;
  }

  clear() {
    this.#entries = [];
    this.#byId.clear();
    this.#pending = [];
    this.#log.replaceChildren();
  }

  #settlePending(id) {
    const item = this.#pending.find((p) => p.id === id);
    if (item) this.#dropPending(item);
  }

  #dropPending(item) {
    this.#pending = this.#pending.filter((p) => p !== item);
    item.element.remove();
  }

  #forget(entry) {
    this.#byId.delete(idKeyOf(entry.message));
    entry.element?.remove();
  }

  /** Puts the entry's element in id order among the visible ones, before any pending stand-ins. */
  #insert(entry) {
    const element = (entry.element ??= this.#render(entry.message));
    const own = this.#isMe(entry.message.from);
    this.#stick(() => {
      let next = null;
      for (let child = this.#log.lastElementChild; child; child = child.previousElementSibling) {
        const key = this.#keys.get(child);
        if (key === undefined || key > entry.key) next = child;
        else break;
      }
      this.#keys.set(element, entry.key);
      this.#log.insertBefore(element, next);
    }, own);
  }

  /** Runs a DOM change and keeps the log at its bottom if it was there (or the change is one's own). */
  #stick(change, force) {
    const log = this.#log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < STICKY_PX;
    change();
    if (atBottom || force) log.scrollTop = log.scrollHeight;
  }

  #render(m, pendingState) {
    const li = document.createElement("li");
    li.dataset.id = String(idKeyOf(m));
    li.dataset.type = m.type;
    switch (m.type) {
      case "join":
      case "leave": {
        li.className = `msg notice ${m.type}`;
        const who = this.#isMe(m.from) ? "You" : m.from;
        const verb = m.type === "join" ? "joined" : "left";
        li.append(span("notice-text", `${who} ${verb} #${m.room}`), timeOf(m.ts));
        return li;
      }
      case "system":
        li.className = "msg system";
        li.append(span("system-label", "server"), span("text", m.text), timeOf(m.ts));
        return li;
      case "gap":
        li.className = "msg gap";
        li.setAttribute("role", "note");
        li.append(
          span(
            "gap-text",
            m.missed > 0
              ? `${m.missed} messages were missed here.`
              : "Connection interrupted: some messages may be missing here.",
          ),
        );
        return li;
      default:
        return this.#renderChat(li, m, pendingState);
    }
  }

  #renderChat(li, m, pendingState) {
    const own = pendingState !== undefined || this.#isMe(m.from);
    li.className = `msg chat${own ? " own" : ""}${m.type === "private" ? " private" : ""}${pendingState ? ` ${pendingState}` : ""}`;
    if (!own) {
      const avatar = span("avatar", (m.from[0] ?? "?").toUpperCase());
      avatar.style.setProperty("--hue", String(hueOf(m.from)));
      avatar.setAttribute("aria-hidden", "true");
      li.append(avatar);
    }
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.append(span("from", own ? "You" : m.from));
    if (m.type === "private") {
      const to = own ? `private to ${m.to}` : this.#isMe(m.to) ? "private to you" : `private to ${m.to}`;
      meta.append(span("tag", to));
    }
    meta.append(timeOf(m.ts));
    if (pendingState) meta.append(span("state", "sending…"));
    bubble.append(meta, span("text", m.text, "p"));
    li.append(bubble);
    return li;
  }
}

/** A gap carries the id of the newest message it stands for, which may be a real message's id too. */
function idKeyOf(message) {
  return message.type === "gap" ? `gap:${message.id}` : message.id;
}

function span(className, text, tag = "span") {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DAY_TIME = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function timeOf(ts) {
  const time = document.createElement("time");
  const date = new Date(Number.isFinite(ts) ? ts : Date.now());
  time.dateTime = date.toISOString();
  time.title = FULL.format(date);
  time.textContent = date.toDateString() === new Date().toDateString() ? TIME.format(date) : DAY_TIME.format(date);
  return time;
}

/** A stable colour per name, so people are told apart at a glance. */
function hueOf(name) {
  let hash = 0;
  for (const ch of name.toLowerCase()) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}
