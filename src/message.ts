import type { ChatMessage } from "./chat-message.js";

export type { ChatMessage, MessageType } from "./chat-message.js";

/**
 * A message plus its serialisations, made at most once per message however
 * many queues hold it: fan-out to N clients must not serialise N times.
 */
export class Envelope {
  readonly message: ChatMessage;
  #json: string | undefined;
  #line: string | undefined;
  #event: string | undefined;
  /** UTF-8 lengths of `line` and `json`, counted once: every answer that carries the message sizes it (poll-answer.ts). */
  #lineBytes = -1;
  #jsonBytes = -1;

  constructor(message: ChatMessage) {
    this.message = message;
  }

  get id(): number {
    return this.message.id;
  }

  get json(): string {
    return (this.#json ??= JSON.stringify(this.message));
  }

  /** A Server-Sent Events frame (spec §4): id, event type, JSON data. */
  get event(): string {
    return (this.#event ??= `id: ${this.message.id}\nevent: ${this.message.type}\ndata: ${this.json}\n\n`);
  }

  /** The seed's text form, one line with its "\n". */
  get line(): string {
    return (this.#line ??= textLine(this.message) + "\n");
  }

  get lineBytes(): number {
    if (this.#lineBytes < 0) this.#lineBytes = Buffer.byteLength(this.line);
    return this.#lineBytes;
  }

  get jsonBytes(): number {
    if (this.#jsonBytes < 0) this.#jsonBytes = Buffer.byteLength(this.json);
    return this.#jsonBytes;
  }
}

/** CR and LF become the two characters \n, so one message is always one line and none forges another. */
export function escapeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\\n");
}

/**
 * A character a terminal would act on (spec §3): C0 controls but TAB, CR and LF
 * (those two are shown as \n), DEL, C1, and the bidi overrides and isolates.
 * They move the cursor, erase or reorder a line: `mallory : \x1b[2K\x1b[1Galice : hi`.
 * Posts refuse them (checkText); the text line escapes any an older log still holds.
 */
export const TERMINAL_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const TERMINAL_CONTROLS = new RegExp(TERMINAL_CONTROL.source, "g");

/**
 * The text as one harmless line: line breaks as \n, and any other control
 * character as \xHH or \uHHHH: a message from an older log may still hold
 * one, and must not rewrite an `nc` user's screen.
 */
export function escapeForLine(text: string): string {
  return escapeLineBreaks(text).replace(TERMINAL_CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

export function textLine(m: ChatMessage): string {
  const text = escapeForLine(m.text);
  switch (m.type) {
    case "message":
      return `${m.from} : ${text}`;
    case "private":
      return `${m.from} -> ${m.to} : ${text}`;
    case "join":
      return `* ${m.from} joined ${m.room}`;
    case "leave":
      return `* ${m.from} left ${m.room}`;
    case "gap":
      return m.missed == null ? "* some messages missed" : `* ${m.missed} messages missed`;
    case "system":
      return `* ${text}`;
  }
}
