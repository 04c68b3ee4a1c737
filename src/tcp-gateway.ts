import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Client } from "./client.js";
import { ChatError } from "./errors.js";
import { DEFAULT_ROOM, type Hub } from "./hub.js";
import type { Envelope } from "./message.js";
import { pumpQueue } from "./queue-pump.js";
import { checkName } from "./validate.js";

export interface TcpGatewayOptions {
  maxMessage: number;
  maxPendingBytes: number;
  /** A connection that names no one in this long is closed, in ms. @default 60000 */
  nameTimeoutMs?: number;
  /** Told of an error that is not a ChatError (a bug): the connection gets `error internal` and the server goes on. */
  onUnexpected?: (error: unknown) => void;
  /** Counts a new connection; false turns it away (the per-address cap). @default admits all */
  admit?: (socket: Socket) => boolean;
}

/** How often a connection paused for not reading checks whether its output drained, in ms. */
const RESUME_CHECK_MS = 100;

/** A line is at most this many bytes before its end is seen: maxMessage characters of up to 4 UTF-8 bytes, plus CRLF. */
const bytesPerChar = 4;

/**
 * The TCP line gateway (spec §6) for `nc` and `telnet`: a greeting, a name,
 * then every line is a message to the current room and every message
 * received is one of the seed's text lines. Thin over the same hub.
 */
export class TcpGateway {
  readonly #hub: Hub;
  readonly #options: Required<TcpGatewayOptions>;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(hub: Hub, options: TcpGatewayOptions) {
    this.#hub = hub;
    this.#options = { nameTimeoutMs: 60_000, onUnexpected: () => {}, admit: () => true, ...options };
    this.#server = createServer((socket) => this.#connect(socket));
  }

  get connections(): number {
    return this.#sockets.size;
  }

  /** The most output any one connection has waiting unread, in bytes (bounded by maxPendingBytes plus one write). */
  largestPendingOutput(): number {
    let largest = 0;
    for (const socket of this.#sockets) largest = Math.max(largest, socket.writableLength);
    return largest;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Says goodbye to every connection with a reason, then stops listening. */
  close(reason = "server shutting down"): Promise<void> {
    return new Promise((resolve) => {
      for (const socket of this.#sockets) goodbye(socket, `* ${reason}\n`);
      this.#server.close(() => resolve());
      // A client that never reads would hold close() forever.
      setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
      }, 1000).unref();
    });
  }

  #connect(socket: Socket): void {
    socket.on("error", () => {}); // a reset by the peer ends like a close
    if (!this.#options.admit(socket)) {
      goodbye(socket, "* too many connections from your address\n");
      return;
    }
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    // Half-open peers (a laptop that slept) are found by TCP keep-alive, not by chat silence.
    socket.setKeepAlive(true, 60_000);
    socket.write(`Hello ${socket.remoteAddress}:${socket.remotePort}\nWhat is your name?\n`);
    const nameTimer = setTimeout(() => goodbye(socket, "* no name given, goodbye\n"), this.#options.nameTimeoutMs);
    let client: Client | undefined;
    let stopPump = (): void => {};
    let resumeCheck: NodeJS.Timeout | undefined;
    // A client that sends without reading must not make the server hold its answers:
    // past the cap its lines are refused (and counted), and its input paused.
    const notReading = (): boolean => socket.writableLength > this.#options.maxPendingBytes;
    let refused = 0;

    // A TCP session cannot be resumed: the connection is the session, and it ends with it.
    const endSession = (): void => {
      stopPump();
      if (!client) return;
      this.#hub.detach(client);
      this.#hub.endSession(client, "left");
      client = undefined;
    };

    const onLine = (line: string): void => {
      if (socket.writableEnded) return; // said exit, or is being closed: the rest of the packet is not read
      if (notReading()) {
        refused++;
        return;
      }
      try {
        handleLine(line);
      } catch (error) {
        // Refused input answers with its error line; a bug answers `error internal` and never takes the server down.
        if (!(error instanceof ChatError)) this.#options.onUnexpected(error);
        const known = error instanceof ChatError ? error : new ChatError("internal");
        socket.write(`error ${known.code}: ${known.message}\n`);
      }
    };

    const handleLine = (line: string): void => {
      if (line.trim() === "exit") {
        endSession();
        goodbye(socket, "Bye\n");
        return;
      }
      if (!client) {
        client = this.#claimName(socket, line.trim());
        if (!client) return;
        clearTimeout(nameTimer);
        this.#hub.attach(client);
        const self = client;
        stopPump = pumpQueue(this.#hub, self, socket, {
          format: (entry) => (isOwnLine(entry, self) ? undefined : entry.line),
          maxPending: this.#options.maxPendingBytes,
          onEnd: () => goodbye(socket, "* your session ended\n"),
        });
        return;
      }
      if (line === "") return;
      this.#hub.post(client, { text: line, autoJoin: true });
    };

    const reader = new LineReader(this.#options.maxMessage * bytesPerChar + 2, onLine, (problem) => {
      if (!notReading()) socket.write(`error ${problem}\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      if (refused > 0 && !socket.writableEnded) {
        socket.write(`error not_reading: ${refused} lines refused; read what the server sends, then send again\n`);
        refused = 0;
      }
      if (notReading() && !socket.isPaused()) {
        socket.pause();
        resumeCheck = setInterval(() => {
          if (notReading()) return;
          clearInterval(resumeCheck);
          socket.resume();
        }, RESUME_CHECK_MS);
      }
    });
    socket.on("close", () => {
      this.#sockets.delete(socket);
      clearTimeout(nameTimer);
      clearInterval(resumeCheck);
      endSession();
    });
  }

  /** A free, valid name gets a session (claimed with a token nobody else has, so HTTP cannot speak as it). */
  #claimName(socket: Socket, name: string): Client | undefined {
    try {
      checkName(name);
      return this.#hub.joinWithToken(name, DEFAULT_ROOM, undefined, false);
    } catch (error) {
      if (!(error instanceof ChatError)) throw error;
      socket.write(`error ${error.code}: ${error.message}\nWhat is your name?\n`);
      return undefined;
    }
  }
}

/**
 * Says a last line and closes. end() alone only half-closes: a peer that keeps
 * its own half open would hold the socket (and its per-address slot) for good.
 */
function goodbye(socket: Socket, line: string): void {
  socket.end(line, () => socket.destroy());
}

/** The sender gets no echo of its own lines (spec §6); answers to its commands it does get. */
function isOwnLine(entry: Envelope, client: Client): boolean {
  const m = entry.message;
  return (m.type === "message" || m.type === "private") && m.from === client.name;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Splits a byte stream into lines: LF or CRLF, across packets. A line that
 * is not UTF-8 or grows past maxBytes is dropped with an error, and the
 * reader carries on with the next line.
 */
export class LineReader {
  readonly #maxBytes: number;
  readonly #onLine: (line: string) => void;
  readonly #onError: (problem: string) => void;
  #parts: Buffer[] = [];
  #size = 0;
  #discarding = false;

  constructor(maxBytes: number, onLine: (line: string) => void, onError: (problem: string) => void) {
    this.#maxBytes = maxBytes;
    this.#onLine = onLine;
    this.#onError = onError;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#take(chunk.subarray(start, nl));
      this.#endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.#take(chunk.subarray(start));
  }

  #take(bytes: Buffer): void {
    if (this.#discarding || bytes.length === 0) return;
    this.#size += bytes.length;
    if (this.#size > this.#maxBytes) {
      this.#discarding = true;
      this.#parts = [];
      return;
    }
    this.#parts.push(bytes);
  }

  #endLine(): void {
    if (this.#discarding) {
      this.#discarding = false;
      this.#size = 0;
      this.#onError("message_too_long: that line was too long and was dropped");
      return;
    }
    let bytes = Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, -1);
    let line: string;
    try {
      line = utf8.decode(bytes);
    } catch {
      this.#onError("bad_encoding: that line was not UTF-8 and was dropped");
      return;
    }
    this.#onLine(line);
  }
}
