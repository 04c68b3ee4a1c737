// The send queue. Posts go one at a time, in order, each with its own txn key:
// a post retried after a lost answer or a reconnect is recognised by the
// server and never doubles (spec §5).

import { backoffMs, wakeableDelay } from "./backoff.js";
import { isRetryable, newTxn } from "./api.js";

export class Outbox {
  #api;
  #recover;
  #onSent;
  #onFailed;
  #items = [];
  #busy = false;
  #stopped = false;
  #wake = () => {};

  /** onSent(item, id) when the server took it; onFailed(item, error) when it never will (4xx). */
  constructor({ api, recover, onSent, onFailed }) {
    this.#api = api;
    this.#recover = recover;
    this.#onSent = onSent;
    this.#onFailed = onFailed;
  }

  /** Queues a post; returns the item (its `txn` names it until the server gives it an id). */
  send(text, room) {
    const item = { txn: newTxn(), text, room, id: undefined };
    this.#items.push(item);
    this.#stopped = false;
    void this.#drain();
    return item;
  }

  get pending() {
    return this.#items.length;
  }

  retryNow() {
    this.#wake();
  }

  /** Forgets what is queued (the user signed out). */
  clear() {
    this.#stopped = true;
    this.#items.length = 0;
    this.#wake();
  }

  async #drain() {
    if (this.#busy) return;
    this.#busy = true;
    let failures = 0;
    /** Joins again in a row; reset by any other answer. */
    let rejoins = 0;
    try {
      while (this.#items.length > 0 && !this.#stopped) {
        const item = this.#items[0];
        try {
          const answer = await this.#api.post(item.text, item.room, item.txn);
          // Cleared meanwhile (signed out): the answer belongs to a session that is gone.
          if (this.#items[0] !== item) continue;
          this.#items.shift();
          failures = 0;
          rejoins = 0;
          item.id = answer.id;
          this.#onSent(item, answer.id);
        } catch (error) {
          if (this.#stopped || this.#items[0] !== item) continue;
          let retry = isRetryable(error);
          if (error?.status !== 401) rejoins = 0;
          if (error?.status === 401) {
            try {
              await this.#recover(error);
              retry = true;
              // Joined again: retry at once the first time, with backoff should it keep happening.
              if (++rejoins === 1) continue;
            } catch (recoverError) {
              error = recoverError;
              retry = isRetryable(recoverError);
            }
          }
          if (!retry) {
            if (this.#items[0] === item) this.#items.shift();
            this.#onFailed(item, error);
            continue;
          }
          failures++;
          const delay = wakeableDelay(backoffMs(failures, error?.retryAfterMs));
          this.#wake = delay.wake;
          await delay.promise;
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
