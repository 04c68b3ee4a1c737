// The sending half of the client. Sends go one at a time, in order, each with
// its own txn key: a send retried after a lost answer, a restart or a re-join
// is recognised by the server and never doubles (spec §5), so each send
// resolves once, with the one id, however often it was retried.

import { backoffMs, ClientError, field, isRetryable, networkError, onAbort, requestJson, Waker, type Fetch } from "./http.js";

export interface OutboxHost {
  readonly base: string;
  readonly fetch: Fetch;
  readonly maxBackoffMs: number;
  /** One post's attempt gives up after this long, and goes again with the same txn. */
  readonly requestTimeoutMs: number;
  token(): string | undefined;
  recover(usedToken: string | undefined): Promise<void>;
}

export interface SendOptions {
  /** The room to post to; the session's current room when left out. */
  room?: string;
  /** A private message to this name. */
  to?: string;
  /** Gives up on this send: it rejects (a request already on its way may still have posted it, once). */
  signal?: AbortSignal;
}

interface Item {
  text: string;
  options: SendOptions;
  txn: string;
  /** Each settles the send and unhooks it from its signal. */
  resolve: (id: number) => void;
  reject: (error: Error) => void;
}

let txnCount = 0;

/** An idempotency key: unique per client for far longer than the server's 10 minutes. */
function newTxn(): string {
  return `c${Date.now().toString(36)}${(txnCount++).toString(36)}${Math.random().toString(36).slice(2, 12)}`;
}

export class Outbox {
  readonly #host: OutboxHost;
  readonly #waker = new Waker();
  #items: Item[] = [];
  #busy = false;
  #closed: Error | undefined;
  /** The post on its way: retryNow() and close() cut it short. A dropped send's post runs its course (at most the timeout), so the next cannot overtake it. */
  #attempt: AbortController | undefined;

  constructor(host: OutboxHost) {
    this.#host = host;
  }

  send(text: string, options: SendOptions = {}): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (options.signal?.aborted) return Promise.reject(new ClientError(0, "aborted", "The send was aborted."));
    return new Promise((resolve, reject) => {
      // Unhooked once settled: an app may pass one long-lived signal to every send.
      let unhook = (): void => undefined;
      const settled = <T>(settle: (value: T) => void) => (value: T): void => {
        unhook();
        settle(value);
      };
      const item: Item = { text, options, txn: newTxn(), resolve: settled(resolve), reject: settled(reject) };
      this.#items.push(item);
      unhook = onAbort(options.signal, () => this.#drop(item, new ClientError(0, "aborted", "The send was aborted.")));
      void this.#drain();
    });
  }

  /** Cuts a back-off short, and a post on its way too (it goes again at once, same txn): its connection may be half-open. */
  retryNow(): void {
    this.#attempt?.abort();
    this.#waker.wake();
  }

  /** Cuts a back-off short (the server answers again); a post on its way goes on. */
  wake(): void {
    this.#waker.wake();
  }

  /** Rejects whatever is queued with `reason`, and every later send. */
  close(reason: Error): void {
    this.#closed = reason;
    for (const item of this.#items.splice(0)) item.reject(reason);
    this.#attempt?.abort();
    this.#waker.wake();
  }

  #drop(item: Item, error: Error): void {
    const at = this.#items.indexOf(item);
    if (at < 0) return;
    this.#items.splice(at, 1);
    item.reject(error);
    this.#waker.wake();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    const host = this.#host;
    let failures = 0;
    let rejoins = 0;
    try {
      while (this.#items.length > 0 && !this.#closed) {
        const item = this.#items[0]!;
        const usedToken = host.token();
        try {
          const answer = await this.#post(item, usedToken);
          const id = field(answer, "id");
          if (typeof id !== "number") throw new ClientError(0, "bad_answer", "The server's answer to a post had no id.");
          failures = 0;
          rejoins = 0;
          // Aborted or closed meanwhile: it was rejected already.
          if (this.#items[0] !== item) continue;
          this.#items.shift();
          item.resolve(id);
        } catch (caught) {
          if (this.#closed || this.#items[0] !== item) continue;
          let error = networkError(caught);
          // retryNow() cut it short: the same txn goes again at once.
          if (error.code === "aborted") continue;
          if (error.status === 401) {
            try {
              await host.recover(usedToken);
              // Joined again: the same txn goes again at once (the first time).
              if (++rejoins === 1) continue;
            } catch (recoverError) {
              error = networkError(recoverError);
            }
          } else {
            rejoins = 0;
          }
          if (!isRetryable(error) && error.status !== 401) {
            this.#drop(item, error);
            continue;
          }
          failures++;
          await this.#waker.wait(backoffMs(failures, host.maxBackoffMs, error.retryAfterMs));
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  /** One attempt, with its own timeout: a post that hangs must not hold up every later send. */
  async #post(item: Item, token: string | undefined): Promise<unknown> {
    const { room, to } = item.options;
    const attempt = new AbortController();
    this.#attempt = attempt;
    try {
      return await requestJson(this.#host.fetch, `${this.#host.base}/api/messages`, {
        method: "POST",
        token,
        body: { text: item.text, room, to, txn: item.txn },
        signal: attempt.signal,
        timeoutMs: this.#host.requestTimeoutMs,
      });
    } finally {
      if (this.#attempt === attempt) this.#attempt = undefined;
    }
  }
}
