/**
 * Notices a server gone silent: commands are waiting and no byte has come
 * for `timeoutMs` since the last one or since the queue stopped being empty.
 * A Redis host that vanished without a reset (power loss, partition, a
 * paused process) otherwise holds its commands until TCP keepalive gives up,
 * minutes later. On a connection that blocks (XREAD BLOCK), block for less.
 */
export class ReplyWatchdog {
  readonly #timeoutMs: number;
  readonly #isWaiting: () => boolean;
  readonly #onSilent: () => void;
  #timer: NodeJS.Timeout | undefined;
  #lastProgress = 0;

  constructor(timeoutMs: number, isWaiting: () => boolean, onSilent: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#isWaiting = isWaiting;
    this.#onSilent = onSilent;
  }

  /** A command is queued; `first` when nothing was waiting before it. */
  queued(first: boolean): void {
    if (first) this.#lastProgress = Date.now();
    this.#timer ??= setTimeout(() => this.#check(), this.#timeoutMs);
  }

  /** Bytes arrived. */
  progress(): void {
    this.#lastProgress = Date.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    if (!this.#isWaiting()) return;
    const silent = Date.now() - this.#lastProgress;
    if (silent >= this.#timeoutMs) return this.#onSilent();
    this.#timer = setTimeout(() => this.#check(), this.#timeoutMs - silent);
  }
}
