/** What travels to clients (spec §2). */
export type MessageType = "message" | "private" | "join" | "leave" | "system" | "gap";

export interface ChatMessage {
  id: number;
  type: MessageType;
  room: string;
  from: string;
  text: string;
  ts: number;
  /** Recipient of a private message. */
  to?: string;
  /** Messages a gap stands for; null when the count cannot be known (a cursor from before a restart). */
  missed?: number | null;
}

/**
 * A message plus its serialisations, made at most once per message however
 * many queues hold it: fan-out to N clients must not serialise N times.
 */
export class Envelope {
  readonly message: ChatMessage;
  #json: string | undefined;
  #line: string | undefined;
  #event: string | undefined;

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
}

/** CR and LF become the two characters \n, so one message is always one line and none forges another. */
export function escapeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\\n");
}

export function textLine(m: ChatMessage): string {
  const text = escapeLineBreaks(m.text);
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
