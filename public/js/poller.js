// The long-poll loop: GET /api/poll with the cursor, again and again. On any
// failure it reports "reconnecting", backs off and asks again with the same
// cursor, so the server sends again whatever was not acknowledged.

import { backoffMs, wakeableDelay } from "./backoff.js";

/** Held this long by the server; the server clamps it to its own maximum. */
const POLL_TIMEOUT_MS = 25_000;
/** A poll unanswered this long past its timeout rides a dead connection (sleep, NAT drop): abort it. */
const STALL_GRACE_MS = 15_000;

export class Poller {
  #api;
  #onMessages;
  #onStatus;
  #recover;
  #running = false;
  /** Bumped by start and stop, so a loop left over from an earlier session ends instead of running beside the new one. */
  #generation = 0;
  #controller = undefined;
  #wake = () => {};
  cursor = 0;

  /**
   * onMessages(messages, requestCursor) gets each answer; onStatus(state, detail) hears
   * "online" | "reconnecting"; recover(error) is awaited on a 401 (it joins again).
   */
  constructor({ api, onMessages, onStatus, recover }) {
    this.#api = api;
    this.#onMessages = onMessages;
    this.#onStatus = onStatus;
    this.#recover = recover;
  }

  start(cursor) {
    this.cursor = cursor;
    if (this.#running) return;
    this.#running = true;
    void this.#loop(++this.#generation);
  }

  stop() {
    this.#running = false;
    this.#generation++;
    this.#controller?.abort();
    this.#wake();
  }

  /** Cuts a backoff wait short (the browser is online again, or the user pressed retry). */
  retryNow() {
    this.#wake();
  }

  async #loop(generation) {
    const live = () => this.#generation === generation;
    let failures = 0;
    /** Joins again in a row; reset by any other answer. */
    let rejoins = 0;
    // The first poll after starting or a failure asks for an answer at once: it is how the page learns
    // it is connected (a held poll says nothing until a message or its timeout).
    let probe = true;
    while (live()) {
      const controller = new AbortController();
      this.#controller = controller;
      const stall = setTimeout(() => controller.abort(), POLL_TIMEOUT_MS + STALL_GRACE_MS);
      const requestCursor = this.cursor;
      try {
        const answer = await this.#api.poll(requestCursor, probe ? 0 : POLL_TIMEOUT_MS, controller.signal);
        if (!live()) return;
        // Messages first, then the cursor: were the page to fail in between, it asks again and dedupes by id.
        this.#onMessages(answer.messages ?? [], requestCursor);
        if (Number.isSafeInteger(answer.cursor) && answer.cursor >= this.cursor) this.cursor = answer.cursor;
        failures = 0;
        rejoins = 0;
        probe = false;
        this.#onStatus("online");
        continue;
      } catch (error) {
        if (!live()) return;
        if (error?.status !== 401) rejoins = 0;
        if (error?.status === 401) {
          try {
            await this.#recover(error);
            // Joined again. Should the very next poll be refused too, the backoff below paces the joins.
            if (++rejoins === 1) continue;
          } catch (recoverError) {
            if (!live()) return;
            error = recoverError;
          }
        }
        failures++;
        probe = true;
        const wait = backoffMs(failures, error?.retryAfterMs);
        this.#onStatus("reconnecting", { attempt: failures, waitMs: wait, error });
        const delay = wakeableDelay(wait);
        this.#wake = delay.wake;
        await delay.promise;
      } finally {
        clearTimeout(stall);
      }
    }
  }
}
