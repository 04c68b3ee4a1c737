// The receiving half of the client: an SSE stream read through fetch (so the
// token goes in Authorization), resumed with the cursor; long-polls with the
// same cursor while the stream fails or a proxy holds it back, and tries the
// stream again later. Whatever happens, it asks again with its cursor, so
// nothing is lost; the host drops what it has already seen by id.

import { backoffMs, ClientError, errorOf, field, isRetryable, networkError, requestJson, send, Waker, type Fetch } from "./http.js";
import { SseParser } from "./sse-parser.js";
import type { ChatMessage, ReceiveTimings } from "./types.js";

export type Transport = "stream" | "poll";

export interface ReceiverHost {
  readonly base: string;
  readonly fetch: Fetch;
  readonly timings: ReceiveTimings;
  token(): string | undefined;
  /** Messages in id order, with the cursor the request was made with. */
  deliver(messages: ChatMessage[], requestCursor: number | undefined): void;
  connected(transport: Transport): void;
  reconnecting(attempt: number, error: ClientError): void;
  /** A 401: join again (it throws when that cannot be done). */
  recover(usedToken: string | undefined): Promise<void>;
}

export class Receiver {
  readonly #host: ReceiverHost;
  readonly #waker = new Waker();
  #stopped = false;
  #controller: AbortController | undefined;
  /** The id of the last message received; undefined until the first answer (a session resumed by token alone). */
  cursor: number | undefined;
  /** The newest `mark` a poll answer carried (--redis), sent with the next poll: proof of where the log stood (README, the JSON API). */
  mark: string | undefined;
  transport: Transport;
  /** Since when polls have been answered without a failure: after streamRetryMs of it, the stream is tried again. */
  #pollingWellSince: number | undefined;

  constructor(host: ReceiverHost, cursor: number | undefined) {
    this.#host = host;
    this.cursor = cursor;
    this.transport = host.timings.stream ? "stream" : "poll";
    void this.#loop();
  }

  stop(): void {
    this.#stopped = true;
    this.#controller?.abort();
    this.#waker.wake();
  }

  /** Cuts a backoff wait short. */
  retryNow(): void {
    this.#waker.wake();
  }

  async #loop(): Promise<void> {
    const { timings } = this.#host;
    let failures = 0;
    /** Joins again in a row; a second 401 straight after one waits its backoff. */
    let rejoins = 0;
    // The first poll after a failure asks for an answer at once: a held poll says nothing until it ends.
    let probe = true;
    while (!this.#stopped) {
      const pollingWell = this.#pollingWellSince !== undefined && Date.now() - this.#pollingWellSince >= timings.streamRetryMs;
      const streaming = timings.stream && (this.transport === "stream" || pollingWell);
      const usedToken = this.#host.token();
      try {
        if (streaming) {
          this.transport = "stream";
          await this.#stream(usedToken);
        } else {
          await this.#poll(usedToken, probe);
          this.#pollingWellSince ??= Date.now();
          probe = false;
        }
        failures = 0;
        rejoins = 0;
      } catch (caught) {
        if (this.#stopped) return;
        this.#pollingWellSince = undefined;
        let error = networkError(caught);
        if (error.status === 401) {
          try {
            await this.#host.recover(usedToken);
            if (++rejoins === 1) continue;
          } catch (recoverError) {
            if (this.#stopped) return;
            error = networkError(recoverError);
            if (!isRetryable(error)) return; // the host has closed the chat
          }
        } else {
          rejoins = 0;
        }
        if (streaming && error.status !== 401) {
          // The stream failed or was held back: poll at once, and try the stream again later.
          this.transport = "poll";
          probe = true;
          if (failures === 0) continue;
        }
        failures++;
        probe = true;
        this.#host.reconnecting(failures, error);
        await this.#waker.wait(backoffMs(failures, timings.maxBackoffMs, error.retryAfterMs));
      }
    }
  }

  async #poll(token: string | undefined, probe: boolean): Promise<void> {
    const { base, fetch, timings } = this.#host;
    const controller = this.#newController();
    const timeout = probe ? 0 : timings.pollTimeoutMs;
    // An answer this late past its timeout rides a dead connection (sleep, a NAT dropped it).
    const stall = setTimeout(() => controller.abort(), timeout + timings.stallMs);
    const requestCursor = this.cursor;
    let query = requestCursor === undefined ? `timeout=${timeout}` : `cursor=${requestCursor}&timeout=${timeout}`;
    if (this.mark !== undefined) query += `&mark=${encodeURIComponent(this.mark)}`;
    try {
      const answer = await requestJson(fetch, `${base}/api/poll?${query}`, { token, signal: controller.signal });
      if (this.#stopped) return;
      const messages = field(answer, "messages");
      this.#receive(Array.isArray(messages) ? (messages as ChatMessage[]) : [], requestCursor);
      const cursor = field(answer, "cursor");
      if (typeof cursor === "number" && Number.isSafeInteger(cursor) && cursor >= (this.cursor ?? 0)) this.cursor = cursor;
      const mark = field(answer, "mark");
      if (typeof mark === "string" && mark.length <= 100) this.mark = mark;
      this.#host.connected("poll");
    } finally {
      clearTimeout(stall);
    }
  }

  /** Reads one stream until it ends; it always ends by throwing (a broken or closed stream is a failure to recover from). */
  async #stream(token: string | undefined): Promise<void> {
    const { base, fetch, timings } = this.#host;
    const controller = this.#newController();
    let stalled = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    // A proxy that buffers the stream lets nothing through: no first bytes within firstEventMs means polling instead.
    const arm = (ms: number): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, ms);
    };
    arm(timings.firstEventMs);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.cursor !== undefined) headers["last-event-id"] = String(this.cursor);
    try {
      const res = await send(fetch, `${base}/api/events`, { token, signal: controller.signal, headers });
      if (!res.ok) throw errorOf(res, await res.json().catch(() => undefined));
      if (!res.body || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
        throw new ClientError(0, "not_a_stream", "The answer to /api/events was not an event stream.");
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#stopped) throw new ClientError(0, "stream_ended", "The stream ended.");
        arm(timings.stallMs);
        if (first) {
          first = false;
          this.#host.connected("stream");
        }
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          if (event.event === "close") throw new ClientError(0, "stream_closed", `The server closed the stream: ${event.data}`);
          const requestCursor = this.cursor;
          this.#receive([JSON.parse(event.data) as ChatMessage], requestCursor);
        }
      }
    } catch (error) {
      if (stalled) throw new ClientError(0, "stream_stalled", "The stream sent nothing in time (a buffering proxy?).");
      throw networkError(error, controller.signal);
    } finally {
      clearTimeout(watchdog);
      controller.abort();
    }
  }

  #receive(messages: ChatMessage[], requestCursor: number | undefined): void {
    const valid = messages.filter((m) => Number.isSafeInteger(m?.id));
    // Delivered first, then the cursor moves: were a listener to fail in between, the next request asks again.
    this.#host.deliver(valid, requestCursor);
    for (const m of valid) if (m.id > (this.cursor ?? 0)) this.cursor = m.id;
  }

  #newController(): AbortController {
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#stopped) controller.abort();
    return controller;
  }
}
