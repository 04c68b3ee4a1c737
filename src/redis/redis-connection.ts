import { connect, type Socket } from "node:net";
import { Fifo } from "./fifo.js";
import { ReplyWatchdog } from "./reply-watchdog.js";
import { RedisConnectionError, RedisReplyError, RespProtocolError } from "./redis-errors.js";
import type { RedisTarget } from "./redis-url.js";
import { encodeCommand, type RedisArg } from "./resp-encode.js";
import type { RespLimits } from "./resp-limits.js";
import { RespParser } from "./resp-parser.js";
import type { RespReply } from "./resp-reply.js";

export interface RedisConnectionOptions {
  target: RedisTarget;
  /** Connecting, AUTH and SELECT together must take less (ms). */
  connectTimeoutMs: number;
  /** Commands waiting and no byte from the server for this long: the connection is closed (ms; default never). */
  replyTimeoutMs?: number;
  limits?: Partial<RespLimits>;
  /** Told once, when the socket is gone, with why. */
  onClose?: (reason: Error) => void;
}

interface Pending {
  /** Commands written before this one, counted from the first: written once `#written` passes it. */
  seq: number;
  resolve(reply: RespReply): void;
  reject(error: Error): void;
}

/**
 * One socket to Redis, for its whole life (RedisClient reconnects by making a
 * new one). Commands are pipelined: each is queued with its promise, and all
 * the commands given in one turn of the event loop go out in one write
 * (setImmediate); replies settle the queue in order. AUTH, SELECT and a PING
 * are the first commands, and `ready` settles when they are answered.
 *
 * When the socket goes (lost, refused, a protocol error, destroy()), every
 * waiting command is rejected with a RedisConnectionError whose `sent` says
 * whether it had been written (fate unknown) or not (never run).
 */
export class RedisConnection {
  /** Resolves once connected and logged in; rejects (and the socket is gone) if that fails or times out. */
  readonly ready: Promise<void>;
  readonly #socket: Socket;
  readonly #parser: RespParser;
  readonly #pending = new Fifo<Pending>();
  readonly #display: string;
  readonly #watchdog: ReplyWatchdog | undefined;
  #batch: (string | Buffer)[] = [];
  #flush: NodeJS.Immediate | undefined;
  /** Commands queued so far, and of them written to the socket so far. */
  #queued = 0;
  #written = 0;
  #reason: Error | undefined;
  #closed = false;
  readonly #closedPromise: Promise<void>;

  constructor(options: RedisConnectionOptions) {
    const { target } = options;
    this.#display = target.display;
    this.#parser = new RespParser(options.limits);
    const replyTimeoutMs = options.replyTimeoutMs;
    if (replyTimeoutMs !== undefined) {
      this.#watchdog = new ReplyWatchdog(
        replyTimeoutMs,
        () => this.#pending.length > 0,
        () => void this.destroy(new RedisConnectionError(`${target.display}: no reply within ${replyTimeoutMs} ms`, true)),
      );
    }
    this.#socket = connect({ host: target.host, port: target.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 10_000 });
    this.#socket.on("error", (error) => {
      this.#reason ??= new RedisConnectionError(`${target.display}: ${error.message}`, false);
    });
    this.#socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#closedPromise = new Promise((resolve) => {
      this.#socket.once("close", () => {
        this.#onClose();
        options.onClose?.(this.#reason!);
        resolve();
      });
    });
    this.ready = this.#handshake(target, options.connectTimeoutMs);
  }

  /** True until the socket is going (destroyed, lost or broken). */
  get usable(): boolean {
    return !this.#closed && this.#reason === undefined;
  }

  /** Why it closed (or is closing). */
  get reason(): Error | undefined {
    return this.#reason;
  }

  /** Commands sent and not answered yet. */
  get waiting(): number {
    return this.#pending.length;
  }

  /** Sends a command; resolves with its reply, rejects with a RedisReplyError (Redis refused it) or a RedisConnectionError. */
  send(args: readonly RedisArg[]): Promise<RespReply> {
    if (this.#closed || this.#reason) return Promise.reject(new RedisConnectionError(`${this.#display}: not connected`, false));
    return new Promise((resolve, reject) => {
      this.#watchdog?.queued(this.#pending.length === 0);
      this.#pending.push({ seq: this.#queued++, resolve, reject });
      this.#batch.push(encodeCommand(args));
      this.#flush ??= setImmediate(() => this.#write());
    });
  }

  /** Closes the socket now: waiting commands are rejected; resolves once it is gone. */
  destroy(reason?: Error): Promise<void> {
    this.#reason ??= reason ?? new RedisConnectionError(`${this.#display}: connection closed`, false);
    this.#socket.destroy();
    return this.#closedPromise;
  }

  async #handshake(target: RedisTarget, timeoutMs: number): Promise<void> {
    const steps: Promise<RespReply>[] = [];
    if (target.password !== undefined) {
      steps.push(this.send(target.username === undefined ? ["AUTH", target.password] : ["AUTH", target.username, target.password]));
    }
    if (target.db !== 0) steps.push(this.send(["SELECT", target.db]));
    // A PING proves the server answers, and that no password was needed when none was given.
    steps.push(this.send(["PING"]));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisConnectionError(`${target.display}: no answer within ${timeoutMs} ms`, false)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(steps), timeout]);
      // Answered, but broken right after (a stray reply): not a connection to hand out.
      if (this.#reason) throw this.#reason;
    } catch (error) {
      const reason = error instanceof RedisReplyError ? new RedisConnectionError(`${target.display}: ${error.message}`, false) : (error as Error);
      await this.destroy(reason);
      throw this.#reason ?? reason;
    } finally {
      clearTimeout(timer);
    }
  }

  #write(): void {
    this.#flush = undefined;
    const batch = this.#batch;
    this.#batch = [];
    if (this.#closed || this.#reason) return;
    this.#written = this.#queued;
    // Consecutive text commands joined into strings of up to 64 KiB (a string
    // of megabytes costs more to build and encode than its share); corked, so
    // the whole batch still goes out in one writev.
    this.#socket.cork();
    let text = "";
    for (const part of batch) {
      if (typeof part === "string") {
        text += part;
        if (text.length < 65_536) continue;
        this.#socket.write(text);
        text = "";
        continue;
      }
      if (text !== "") this.#socket.write(text);
      text = "";
      this.#socket.write(part);
    }
    if (text !== "") this.#socket.write(text);
    this.#socket.uncork();
  }

  #onData(chunk: Buffer): void {
    this.#watchdog?.progress();
    try {
      this.#parser.push(chunk, (reply) => {
        const waiter = this.#pending.shift();
        if (waiter === undefined) throw new RespProtocolError("a reply to no command");
        if (reply instanceof RedisReplyError) waiter.reject(reply);
        else waiter.resolve(reply);
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      void this.destroy(new RedisConnectionError(`${this.#display}: protocol error: ${why}`, true));
    }
  }

  #onClose(): void {
    this.#closed = true;
    this.#watchdog?.stop();
    this.#reason ??= new RedisConnectionError(`${this.#display}: connection closed by the server`, true);
    if (this.#flush) clearImmediate(this.#flush);
    this.#flush = undefined;
    this.#batch = [];
    const reason = this.#reason.message;
    for (const waiter of this.#pending.drain()) {
      const sent = waiter.seq < this.#written;
      waiter.reject(new RedisConnectionError(sent ? `${reason} (the command was sent: its fate is unknown)` : `${reason} (the command was not sent)`, sent));
    }
  }
}
