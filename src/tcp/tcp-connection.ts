import type { Socket } from "node:net";
import { RELOADED, type Session } from "../session.js";
import { ChatError } from "../errors.js";
import { DEFAULT_ROOM, type Hub, type Identity } from "../hub.js";
import { addressKey } from "../address-key.js";
import { HeldLines } from "./held-lines.js";
import { LineReader } from "./line-reader.js";
import type { Envelope } from "../message.js";
import { pumpSubscription } from "../subscription-stream.js";
import { checkName } from "../validate.js";
import type { ClusterTcp } from "../cluster/cluster-tcp.js";

export { HELD_BYTES, HELD_LINES } from "./held-lines.js";

export interface TcpConnectionOptions {
  maxMessage: number;
  maxPendingBytes: number;
  maxQueue: number;
  /** Only `/token T` identifies (spec §6): no name is taken by a connection alone. */
  requireToken: boolean;
  /** With --jwt-secret: the identity `/token <jwt>` proves (throws 401 for a bad one); undefined accepts no JWT. */
  vouch?: ((jwt: string) => Identity) | undefined;
  /** A connection that says who it is in no more than this, in ms, is closed. */
  nameTimeoutMs: number;
  /** Told of an error that is not a ChatError (a bug): the connection gets `error internal` and the server goes on. */
  onUnexpected: (error: unknown) => void;
  /** With --redis: names, tokens and lines go through the shared log (cluster/cluster-tcp.ts). */
  cluster?: ClusterTcp | undefined;
}

/** How often a connection paused for not reading checks whether its output drained, in ms. */
const RESUME_CHECK_MS = 100;

/** A line is at most this many bytes before its end is seen: maxMessage characters of up to 4 UTF-8 bytes, plus CRLF. */
const bytesPerChar = 4;

/** A connection told to go that does not read its last line is cut after this long, in ms. */
const BYE_GRACE_MS = 3000;

/** `/token T`: the session token of POST /api/join. */
const TOKEN_LINE = /^\/token(?:[ \t]+(\S*))?$/i;

/** Entries a connection into a shared session keeps queued after writing them (as SSE does), for the page polling with its cursor. */
const SHARED_KEEP = 256;

/**
 * Who a connection speaks as. `owned`: a name it claimed, whose session is the
 * connection and ends with it. Otherwise a session of /api/join whose token it
 * presented: the connection is one more way in, and closing it ends nothing.
 */
interface Speaker {
  client: Session;
  owned: boolean;
}

/**
 * One `nc` connection of the TCP gateway (spec §6): a greeting, a name or a
 * token, then every line is a message to the current room and every message
 * received is one of the seed's text lines.
 *
 * Every writer and timer stops when the connection ends: nothing is written
 * after end() (said goodbye) or once the socket is gone.
 */
export class TcpConnection {
  readonly socket: Socket;
  readonly #hub: Hub;
  readonly #options: TcpConnectionOptions;
  readonly #reader: LineReader;
  #speaker: Speaker | undefined;
  #stopPump = (): void => {};
  #nameTimer: NodeJS.Timeout | undefined;
  #resumeCheck: NodeJS.Timeout | undefined;
  #byeTimer: NodeJS.Timeout | undefined;
  /** Lines refused since the last notice, for not reading (see #onLine). */
  #refused = 0;
  /** With --redis, while a name or token is being settled: the lines that came meanwhile, handled after it, in order. */
  readonly #held: HeldLines;

  constructor(hub: Hub, socket: Socket, options: TcpConnectionOptions) {
    this.#hub = hub;
    this.socket = socket;
    this.#options = options;
    this.#held = new HeldLines(socket);
    socket.setNoDelay(true);
    // Half-open peers (a laptop that slept) are found by TCP keep-alive, not by chat silence.
    socket.setKeepAlive(true, 60_000);
    this.#reader = new LineReader(options.maxMessage * bytesPerChar + 2, (line) => this.#onLine(line), (problem) => {
      if (!this.#notReading()) this.#say(`error ${problem}\n`);
    });
    this.#say(`Hello ${socket.remoteAddress}:${socket.remotePort}\n${this.#prompt()}`);
    const asked = options.requireToken ? "token" : "name";
    this.#nameTimer = setTimeout(() => this.bye(`* no ${asked} given, goodbye\n`), options.nameTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.once("close", () => this.#onClose());
  }

  /**
   * Says a last line and closes. Everything that writes or waits stops first.
   * end() alone only half-closes: a peer that keeps its own half open, or never
   * reads the line, would hold the socket (and its per-address slot), so it is
   * destroyed once the line is out, or after graceMs.
   */
  bye(line: string, graceMs = BYE_GRACE_MS): void {
    this.#stopWriters();
    if (this.socket.destroyed) return;
    if (!this.socket.writableEnded) this.socket.end(line, () => this.socket.destroy());
    // Said goodbye already: a second call (the server shutting down) only sets the deadline it needs.
    clearTimeout(this.#byeTimer);
    this.#byeTimer = setTimeout(() => this.socket.destroy(), graceMs);
  }

  #prompt(): string {
    // Without --require-token, `/token T` is accepted in place of a name too.
    if (!this.#options.requireToken) return "What is your name?\n";
    return this.#options.vouch ? "Send your token: /token T (a JWT, or from POST /api/join)\n" : "Send your token: /token T (from POST /api/join)\n";
  }

  /** Writes unless the connection is ending or gone. */
  #say(text: string): void {
    if (!this.socket.writableEnded && !this.socket.destroyed) this.socket.write(text);
  }

  /** A client that sends without reading must not make the server hold its answers. */
  #notReading(): boolean {
    return this.socket.writableLength > this.#options.maxPendingBytes;
  }

  #onData(chunk: Buffer): void {
    this.#reader.push(chunk);
    if (this.#refused > 0) {
      this.#say(`error not_reading: ${this.#refused} lines refused; read what the server sends, then send again\n`);
      this.#refused = 0;
    }
    // Past the cap its lines are refused (and counted), and its input paused until its output drains.
    if (this.#notReading() && !this.socket.isPaused() && !this.socket.writableEnded) {
      this.socket.pause();
      clearInterval(this.#resumeCheck);
      this.#resumeCheck = setInterval(() => {
        if (this.#notReading()) return;
        clearInterval(this.#resumeCheck);
        this.#resumeCheck = undefined;
        this.socket.resume();
      }, RESUME_CHECK_MS);
    }
  }

  #onLine(line: string): void {
    // Said exit, or is being closed, or gone (reset while lines waited for a name to settle):
    // the rest is not read, and a line nobody can be answered on does nothing.
    if (this.socket.writableEnded || this.socket.destroyed) return;
    if (this.#notReading()) {
      this.#refused++;
      return;
    }
    if (this.#held.holding) return this.#held.hold(line);
    try {
      this.#handle(line);
    } catch (error) {
      this.#refuse(error);
    }
  }

  /** Refused input answers with its error line; a bug answers `error internal` and never takes the server down. */
  #refuse(error: unknown): void {
    if (!(error instanceof ChatError)) this.#options.onUnexpected(error);
    const known = error instanceof ChatError ? error : new ChatError("internal");
    this.#say(`error ${known.code}: ${known.message}\n${this.#speaker ? "" : this.#prompt()}`);
  }

  /** With --redis: who the connection speaks as is settled by the shared log; lines wait meanwhile. */
  #settle(who: Promise<Session | undefined>, owned: boolean): void {
    this.#held.start();
    who
      .then((client) => {
        if (!client) throw new ChatError("unauthorized", "That token names no session: join through POST /api/join for one.");
        // The connection went while its name was being taken: the session goes with it.
        if (this.socket.destroyed) return void (owned && this.#options.cluster!.release(client));
        this.#speakAs(client, owned);
      })
      .catch((error: unknown) => this.#refuse(error))
      .finally(() => {
        for (const line of this.#held.take()) this.#onLine(line);
        // Read again, unless a held line began another settling (it holds what comes) or the peer does not read.
        this.#held.resume(this.#resumeCheck !== undefined);
      });
  }

  #handle(line: string): void {
    const trimmed = line.trim();
    if (trimmed === "exit") {
      this.#stopWriters();
      this.#release();
      this.bye("Bye\n");
      return;
    }
    const cluster = this.#options.cluster;
    if (this.#speaker) {
      if (line === "") return;
      if (cluster) void cluster.post(this.#speaker.client, line).catch((error: unknown) => this.#refuse(error));
      else this.#hub.post(this.#speaker.client, { text: line, autoJoin: true });
      return;
    }
    const token = TOKEN_LINE.exec(trimmed);
    // A JWT (it has dots; a session token has none) proves a name: that name's session, shared as one of /api/join is.
    if (token?.[1]?.includes(".") && this.#options.vouch) return this.#vouched(this.#options.vouch(token[1]));
    if (token && cluster && token[1]) return this.#settle(cluster.byToken(token[1], (t) => this.#hub.sessionByToken(t)), false);
    if (token) return this.#speakAs(this.#sessionOf(token[1]), false);
    if (this.#options.requireToken) {
      throw new ChatError("unauthorized", "This server needs a token first: send /token T, with T from POST /api/join.");
    }
    checkName(trimmed);
    // A free, valid name gets a session of its own, claimed with a token nobody has, so HTTP cannot speak as it.
    // It counts against --max-sessions-per-ip as the peer's, as an HTTP client's would.
    const address = addressKey(this.socket.remoteAddress ?? "");
    if (cluster) return this.#settle(cluster.claim(trimmed, address), true);
    this.#speakAs(this.#hub.joinWithToken(trimmed, DEFAULT_ROOM, { resumable: false, address }), true);
  }

  /** Speaks as the session of the name a JWT proved, made (with a token, in its claim's first room) if it has none; with --redis by the shared log. */
  #vouched(identity: Identity): void {
    const address = addressKey(this.socket.remoteAddress ?? "");
    if (this.#options.cluster) return this.#settle(this.#options.cluster.vouch(identity, address), false);
    this.#speakAs(this.#hub.sessionForName(identity.name, { identity, address, requireToken: true }), false);
  }

  /** The live session a presented token names (a Map lookup by token: nothing is compared char by char). */
  #sessionOf(token: string | undefined): Session {
    const client = token ? this.#hub.sessionByToken(token) : undefined;
    if (!client) throw new ChatError("unauthorized", "That token names no session: join through POST /api/join for one.");
    return client;
  }

  #speakAs(client: Session, owned: boolean): void {
    clearTimeout(this.#nameTimer);
    this.#speaker = { client, owned };
    // A claimed name sees its own join notice; a session entered by token is told whose it is.
    if (!owned) this.#say(`* you are ${client.name}, in ${client.currentRoom}\n`);
    // The pump waits on the subscription, which counts the connection as presence until the pump stops.
    this.#stopPump = pumpSubscription(this.#hub.open(client), this.socket, {
      format: (entry) => (isOwnLine(entry, client) ? undefined : entry.line),
      maxPending: this.#options.maxPendingBytes,
      onEnd: () => this.bye(client.goesOn ? `* ${RELOADED}\n` : "* your session ended\n"),
      // A shared session's page may poll with its cursor: keep what was written here for it, as SSE does.
      keepWritten: owned ? 0 : Math.min(SHARED_KEEP, Math.floor(this.#options.maxQueue / 2)),
    });
  }

  /** Lets go of the session: a claimed name's ends with its connection; a shared one only loses this presence. */
  #release(): void {
    const speaker = this.#speaker;
    if (!speaker) return;
    this.#speaker = undefined;
    // (Its presence ended with the pump: #stopWriters runs first.)
    if (speaker.owned && this.#options.cluster) this.#options.cluster.release(speaker.client);
    else if (speaker.owned) this.#hub.endSession(speaker.client, "left");
  }

  /** Idempotent: no timer fires and no queue is pumped into this socket after it. */
  #stopWriters(): void {
    clearTimeout(this.#nameTimer);
    clearInterval(this.#resumeCheck);
    this.#resumeCheck = undefined;
    this.#stopPump();
  }

  #onClose(): void {
    this.#stopWriters();
    clearTimeout(this.#byeTimer);
    this.#release();
  }
}

/** The sender gets no echo of its own lines (spec §6); answers to its commands it does get. */
function isOwnLine(entry: Envelope, client: Session): boolean {
  const m = entry.message;
  return (m.type === "message" || m.type === "private") && m.from === client.name;
}
