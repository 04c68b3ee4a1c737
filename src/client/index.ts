// pollchat/client (spec §11), served as /client.js too: the same code for a
// Node program and the page. Join, receive (SSE, or long-polls), send with txn
// keys, dedupe by id, and re-join after a 401. Only fetch, AbortController,
// TextDecoder and timers: it runs in browsers and Node 20+ alike.

import { Emitter } from "./emitter.js";
import { ClientError, field, numberField, onAbort, requestJson, type Fetch, type RequestOptions } from "./http.js";
import { allMembers, roomMembers } from "./member-pages.js";
import { Outbox, type SendOptions } from "./outbox.js";
import { Receiver, type Transport } from "./receiver.js";
import { SeenIds } from "./seen-ids.js";
import { receiveTimings } from "./timings.js";
import type { ChatEvents, ChatMessage, ChatState, ConnectOptions, Gap, ReceiveTimings, SessionInfo, StateInfo } from "./types.js";

export { ClientError } from "./http.js";
export { SseParser } from "./sse-parser.js";
export type { SseEvent } from "./sse-parser.js";
export type { SendOptions } from "./outbox.js";
export type { ChatEvents, ChatMessage, ChatState, ConnectOptions, Gap, MessageType, ReceiveTimings, SessionInfo, StateInfo } from "./types.js";

/** A valid name or room (spec §2): what the server accepts, for a form to check before asking. */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;

/** A post or a join that long unanswered rides a dead connection: it fails (a post goes again, same txn). */
const REQUEST_TIMEOUT_MS = 15_000;

/** Joins and starts receiving; rejects when the join is refused or the server cannot be reached. */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Chat> {
  const chat = new Chat(url, options);
  await chat.start();
  return chat;
}

export class Chat extends Emitter<ChatEvents> {
  readonly #base: string;
  readonly #fetch: Fetch;
  readonly #timings: ReceiveTimings;
  readonly #jwt: string | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #requestTimeoutMs: number;
  /** Takes the close off the caller's signal, which may outlive the chat. */
  #unhookSignal = (): void => undefined;
  #name: string | undefined;
  #token: string | undefined;
  /** Rooms the session is in, in the order joined; the last is the current one. */
  #rooms: string[] = [];
  #state: ChatState = "connecting";
  readonly #seen = new SeenIds();
  #receiver: Receiver | undefined;
  #outbox: Outbox;
  #rejoining: Promise<void> | undefined;
  #firstRoom: string | undefined;
  #transportShown: string | undefined;

  constructor(url: string, options: ConnectOptions) {
    super();
    if (options.name === undefined && options.token === undefined && options.jwt === undefined) {
      throw new TypeError("connect needs a name, a token or a jwt.");
    }
    this.#base = url.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#timings = receiveTimings(options);
    this.#name = options.name;
    this.#token = options.token;
    this.#jwt = options.jwt;
    this.#firstRoom = options.room;
    this.#signal = options.signal;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    const host = { base: this.#base, fetch: this.#fetch, maxBackoffMs: this.#timings.maxBackoffMs, requestTimeoutMs: this.#requestTimeoutMs, token: () => this.#token, recover: (t: string | undefined) => this.#recover(t) };
    this.#outbox = new Outbox(host);
  }

  /** The name as the server spells it (undefined for a session resumed by token alone). */
  get name(): string | undefined {
    return this.#name;
  }
  get token(): string | undefined {
    return this.#token;
  }
  get rooms(): readonly string[] {
    return [...this.#rooms];
  }
  /** The current room: where a send without `room` goes, and what `/who` answers for. */
  get room(): string | undefined {
    return this.#rooms.at(-1);
  }
  get state(): ChatState {
    return this.#state;
  }
  get transport(): Transport | undefined {
    return this.#receiver?.transport;
  }
  /** The id of the last message received. */
  get cursor(): number | undefined {
    return this.#receiver?.cursor;
  }

  /** @internal connect() calls it. */
  async start(): Promise<void> {
    const signal = this.#signal;
    if (signal?.aborted) throw new ClientError(0, "aborted", "Aborted before connecting.");
    let cursor: number | undefined;
    if (this.#name !== undefined || this.#jwt !== undefined) {
      const answer = await this.#join(this.#firstRoom, this.#jwt === undefined ? this.#token : undefined, true);
      cursor = numberField(answer, "cursor");
    }
    if (signal?.aborted) throw new ClientError(0, "aborted", "Aborted while connecting.");
    this.#unhookSignal = onAbort(signal, () => this.close());
    this.emit("session", this.#session());
    this.#receiver = new Receiver(
      {
        base: this.#base,
        fetch: this.#fetch,
        timings: this.#timings,
        token: () => this.#token,
        deliver: (messages, after) => this.#deliver(messages, after),
        connected: (transport) => {
          this.#setState("connected", { transport });
          this.#outbox.wake();
        },
        reconnecting: (attempt, error) => this.#setState("reconnecting", { attempt, error }),
        recover: (t) => this.#recover(t),
      },
      cursor,
    );
  }

  /** Posts; resolves with the message's id once, however often it had to retry (one txn key per send). */
  send(text: string, options: SendOptions = {}): Promise<number> {
    return this.#outbox.send(text, options);
  }

  /** Joins a room (or makes one already joined the current room); resolves with all its members (member-pages.ts). */
  async join(room: string): Promise<{ room: string; members: string[] }> {
    const answer = await this.#retryAfter401(() => this.#join(room, this.#token, false));
    const joined = String(field(answer, "room"));
    return { room: joined, members: await allMembers(answer, this.#memberPages(joined)) };
  }

  /** Leaves a room; without one, ends the session on the server and closes. */
  async leave(room?: string): Promise<void> {
    const body = room === undefined ? {} : { room };
    await this.#retryAfter401(() => this.#request("/api/leave", { method: "POST", token: this.#token, body }));
    if (room === undefined) return this.close();
    this.#forgetRoom(room);
  }

  /** Stops receiving and sending (queued sends reject); the session itself ends on the server after its TTL. */
  close(reason: Error = new ClientError(0, "closed", "The chat was closed.")): void {
    if (this.#state === "closed") return;
    this.#unhookSignal();
    this.#receiver?.stop();
    this.#outbox.close(reason);
    this.#setState("closed", reason instanceof ClientError && reason.code === "closed" ? {} : { error: reason });
  }

  /** Tries again at once whatever waits out a backoff (the network is back, a user pressed "retry"), and a post on its way. */
  retryNow(): void {
    this.#receiver?.retryNow();
    this.#outbox.retryNow();
  }

  /** GET /api/rooms. */
  async listRooms(): Promise<{ name: string; members: number }[]> {
    const rooms = field(await this.#request("/api/rooms", { token: this.#token }), "rooms");
    return Array.isArray(rooms) ? (rooms as { name: string; members: number }[]) : [];
  }

  /** GET /api/rooms/R: the room's members, every page of them. */
  members(room: string): Promise<{ name: string; members: string[] }> {
    return roomMembers(room, this.#memberPages(room));
  }

  /** Asks for pages of GET /api/rooms/R. */
  #memberPages(room: string): (query: string) => Promise<unknown> {
    return (query) => this.#request(`/api/rooms/${encodeURIComponent(room)}${query}`, { token: this.#token });
  }

  /** GET /api/rooms/R/messages: room history, newest last. */
  async history(room: string, { limit = 50, before }: { limit?: number; before?: number } = {}): Promise<ChatMessage[]> {
    const query = `limit=${limit}${before === undefined ? "" : `&before=${before}`}`;
    const messages = field(await this.#request(`/api/rooms/${encodeURIComponent(room)}/messages?${query}`, { token: this.#token }), "messages");
    return Array.isArray(messages) ? (messages as ChatMessage[]) : [];
  }

  /** POST /api/join as the name (or the JWT on a fresh join); keeps the token and the room list. */
  async #join(room: string | undefined, token: string | undefined, fresh: boolean): Promise<unknown> {
    const who = fresh && this.#jwt !== undefined ? { jwt: this.#jwt } : { name: this.#name };
    const body = room === undefined ? who : { ...who, room };
    const answer = await this.#request("/api/join", { method: "POST", token, body, signal: this.#signal });
    const newToken = field(answer, "token");
    const name = field(answer, "name");
    const joined = String(field(answer, "room"));
    if (typeof newToken === "string") this.#token = newToken;
    if (typeof name === "string") this.#name = name;
    this.#rooms = [...(fresh ? [] : this.#rooms.filter((r) => r !== joined)), joined];
    // The session had ended and the name was free: this is a new session. Bring back the other rooms too.
    if (!fresh && token !== undefined && newToken !== token) {
      const rooms = [...this.#rooms];
      this.#rooms = [joined];
      void this.#joinRooms(rooms);
    }
    return answer;
  }

  /** Every request but the receiver's: none may hang (a re-join holds up receiving and sending). */
  #request(path: string, options: RequestOptions): Promise<unknown> {
    return requestJson(this.#fetch, this.#base + path, { ...options, timeoutMs: this.#requestTimeoutMs });
  }

  /** A 401 means the server forgot the session: join again with the name (or JWT) and the same rooms, once for all callers. */
  #recover(usedToken: string | undefined): Promise<void> {
    if (usedToken !== this.#token) return Promise.resolve(); // someone re-joined already
    this.#rejoining ??= this.#rejoin().finally(() => (this.#rejoining = undefined));
    return this.#rejoining;
  }

  async #rejoin(): Promise<void> {
    if (this.#name === undefined && this.#jwt === undefined) {
      const error = new ClientError(401, "unauthorized", "The session ended, and a chat resumed by token alone has no name to join again with.");
      this.close(error);
      throw error;
    }
    this.#setState("reconnecting", { rejoining: true });
    const rooms = this.#rooms.length === 0 ? [this.#firstRoom] : this.#rooms; // the current room last, as before
    try {
      await this.#join(rooms[0], undefined, true);
    } catch (error) {
      // Refused, not unreachable (the name is someone else's now, the JWT expired): the chat cannot go on.
      if (error instanceof ClientError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429) this.close(error);
      throw error;
    }
    await this.#joinRooms(rooms.slice(1) as string[]);
  }

  /** Joins these rooms again (one that cannot be joined is left out), then says which rooms the session is in. */
  async #joinRooms(rooms: readonly string[]): Promise<void> {
    for (const room of rooms) await this.#join(room, this.#token, false).catch(() => undefined);
    this.emit("session", this.#session());
  }

  async #retryAfter401<T>(request: () => Promise<T>): Promise<T> {
    const usedToken = this.#token;
    try {
      return await request();
    } catch (error) {
      if (!(error instanceof ClientError && error.status === 401)) throw error;
      await this.#recover(usedToken);
      return request();
    }
  }

  #deliver(messages: ChatMessage[], after: number | undefined): void {
    for (const message of messages) {
      if (!this.#seen.first(message)) continue;
      if (message.type === "gap") {
        this.emit("gap", { ...message, type: "gap", after });
        continue;
      }
      this.#trackOwnPresence(message);
      this.emit("message", message);
    }
  }

  /** A join or leave of our own (a typed /join, another tab of the same session) changes our rooms. */
  #trackOwnPresence(m: ChatMessage): void {
    if (this.#name === undefined || m.from?.toLowerCase() !== this.#name.toLowerCase()) return;
    if (m.type === "join" && !this.#rooms.includes(m.room)) this.#rooms.push(m.room);
    if (m.type === "leave") this.#forgetRoom(m.room);
  }

  #forgetRoom(room: string): void {
    this.#rooms = this.#rooms.filter((r) => r !== room.toLowerCase() && r !== room);
  }

  #session(): SessionInfo {
    return { name: this.#name, token: this.#token, rooms: this.rooms };
  }

  #setState(state: ChatState, info: StateInfo): void {
    // Every poll answered says "connected": only a change is news.
    if (this.#state === "closed" || (state === "connected" && this.#state === state && info.transport === this.#transportShown)) return;
    this.#state = state;
    this.#transportShown = info.transport;
    this.emit("state", state, info);
  }
}
