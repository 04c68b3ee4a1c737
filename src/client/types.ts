import type { ChatMessage } from "../chat-message.js";
import type { Fetch } from "./http.js";

/** What the server sends (spec §2): the server's own wire types. */
export type { ChatMessage, MessageType } from "../chat-message.js";

/** A `gap` event: the gap message, and `after`, the cursor the client had when it was told (where it lost track). */
export interface Gap extends ChatMessage {
  type: "gap";
  after: number | undefined;
}

export type ChatState = "connecting" | "connected" | "reconnecting" | "closed";

/** What came with a state change. */
export interface StateInfo {
  /** "connected": how messages arrive now. */
  transport?: "stream" | "poll";
  /** "reconnecting": failed attempts in a row, and the last failure. */
  attempt?: number;
  error?: Error;
  /** "reconnecting": the server forgot the session (401) and the client is joining again. */
  rejoining?: boolean;
}

/** The session as the server knows it now: after connect, and after every re-join. */
export interface SessionInfo {
  name: string | undefined;
  token: string | undefined;
  rooms: readonly string[];
}

export interface ChatEvents {
  message: (message: ChatMessage) => void;
  gap: (gap: Gap) => void;
  state: (state: ChatState, info: StateInfo) => void;
  session: (session: SessionInfo) => void;
}

/** How the receiving side paces itself; every field has a default (index.ts). */
export interface ReceiveTimings {
  /** Stream with SSE (and fall back to polling); false: long-poll only. */
  stream: boolean;
  /** No byte of a new stream within this long: a proxy buffers it, poll instead. */
  firstEventMs: number;
  /** Nothing (not even a heartbeat) on an open stream, or no answer this long past a poll's timeout: the connection is dead. */
  stallMs: number;
  /** How long the server holds each poll. */
  pollTimeoutMs: number;
  /** After falling back to polling, the stream is tried again this much later. */
  streamRetryMs: number;
  /** The longest wait between retries. */
  maxBackoffMs: number;
}

export interface ConnectOptions extends Partial<ReceiveTimings> {
  /** Join with this name (with `token` too: resume that session, and re-join with the name should it end). */
  name?: string;
  /** A session token from an earlier join; alone, the session is used as it is and cannot be re-joined. */
  token?: string;
  /** A JWT from the host application (server run with --jwt-secret): the name is its `sub`. */
  jwt?: string;
  /** The room to join; the server's default (`lobby`) when left out. */
  room?: string;
  /** Aborting it closes the chat (and a connect still joining rejects). */
  signal?: AbortSignal;
  /** Another fetch (a proxy agent, a test double). */
  fetch?: Fetch;
  /** A post or join (any request but a poll or the stream) unanswered this long fails; a post goes again with the same txn. 15 s. */
  requestTimeoutMs?: number;
}
