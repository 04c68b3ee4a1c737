import type { Socket } from "node:net";

/**
 * With --redis, lines held while a name or token is settled: past this many (or
 * HELD_BYTES) the connection is not read until it is settled, so a client that
 * streams lines at a claim that takes long (the store is slow) holds at most
 * this much, plus what one read of the socket brought.
 */
export const HELD_LINES = 64;
export const HELD_BYTES = 64 * 1024;

/**
 * With --redis, while a connection's name or token is being settled (tcp-connection.ts):
 * the lines that came meanwhile, handled after it, in order.
 */
export class HeldLines {
  readonly #socket: Socket;
  #lines: string[] | undefined;
  #bytes = 0;
  /** The socket is paused because the held lines are full (not for not reading: the connection's resume check). */
  #paused = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Whether a settling is under way: lines that come are held. */
  get holding(): boolean {
    return this.#lines !== undefined;
  }

  /** A settling starts: lines are held from now. */
  start(): void {
    this.#lines = [];
    this.#bytes = 0;
  }

  /** A line that came while a name or token is settled; past the cap the socket is not read until it is. */
  hold(line: string): void {
    const held = this.#lines;
    if (held === undefined) return;
    held.push(line);
    this.#bytes += Buffer.byteLength(line) + 1;
    if (held.length < HELD_LINES && this.#bytes < HELD_BYTES) return;
    if (!this.#socket.isPaused()) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  /** The settling is done: the lines held, to be handled in order, and none held from now. */
  take(): string[] {
    const held = this.#lines ?? [];
    this.#lines = undefined;
    return held;
  }

  /**
   * Once the lines taken are handled: the socket is read again, unless a held line began another
   * settling (it holds what comes) or the peer does not read (`notReading`: the connection resumes it).
   */
  resume(notReading: boolean): void {
    if (!this.#paused || this.#lines !== undefined) return;
    this.#paused = false;
    if (!notReading && !this.#socket.destroyed) this.#socket.resume();
  }
}
