/**
 * What travels to clients (spec §2): the wire shape of a message, shared by the
 * server (message.ts) and the client library (client/types.ts). No Node API
 * here: the client type-checks it as browser code too.
 */
export type MessageType = "message" | "private" | "join" | "leave" | "system" | "gap";

export interface ChatMessage {
  id: number;
  type: MessageType;
  room: string;
  from: string;
  text: string;
  ts: number;
  /** The recipient of a private message. */
  to?: string;
  /** On a gap: how many messages were missed; null when the server cannot know (a cursor from before a restart). */
  missed?: number | null;
}
