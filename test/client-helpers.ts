import type { Chat, ChatMessage, ChatState, Gap, StateInfo } from "../src/client/index.js";

/** Everything one Chat emitted, and a way to await a condition on it without sleeping. */
export class Recorder {
  readonly messages: ChatMessage[] = [];
  readonly gaps: Gap[] = [];
  readonly states: { state: ChatState; info: StateInfo; transport: string | undefined }[] = [];
  #waiters = new Set<() => void>();

  constructor(readonly chat: Chat) {
    chat.on("message", (m) => this.#note(() => this.messages.push(m)));
    chat.on("gap", (g) => this.#note(() => this.gaps.push(g)));
    chat.on("state", (state, info) => this.#note(() => this.states.push({ state, info, transport: chat.transport })));
  }

  /** Texts of chat messages received, in the order received. */
  texts(): string[] {
    return this.messages.filter((m) => m.type === "message" || m.type === "private").map((m) => m.text);
  }

  /** Resolves once `check` holds (checked now and after every event), rejects after `ms`. */
  until(check: () => boolean, what: string, ms = 8000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${this.chat.name}: no ${what} within ${ms} ms; states ${JSON.stringify(this.states.map((s) => s.state))}, texts ${JSON.stringify(this.texts())}`));
      }, ms);
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve();
      };
      this.#waiters.add(waiter);
    });
  }

  received(text: string, ms?: number): Promise<void> {
    return this.until(() => this.texts().includes(text), `message "${text}"`, ms);
  }

  /** Checks the conditions awaited again: for a test that awaits something besides this chat's events. */
  check(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #note(record: () => void): void {
    record();
    this.check();
  }
}

/** One request a fake or wrapped fetch saw. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: Headers;
  body: unknown;
}

export function describeRequest(input: string | URL | Request, init?: RequestInit): SeenRequest {
  const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
  return {
    method: init?.method ?? "GET",
    path: url.pathname + url.search,
    headers: new Headers(init?.headers),
    body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
  };
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

/** An event stream that sends nothing until aborted: what a buffering proxy looks like from the client. */
export function silentStream(signal: AbortSignal | null | undefined): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
}

/** A poll answer held until aborted or `ms` passed, as the server holds one. */
export function heldPoll(init: RequestInit | undefined, ms: number, cursor: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(jsonResponse(200, { messages: [], cursor })), ms);
    init?.signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

/** `promise`, or a rejection that says what hung after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** One request the fake server saw, with the signal fetch was given. */
export interface FakeRequest extends SeenRequest {
  signal: AbortSignal | undefined;
}

/**
 * A scripted server for a Chat: a join without a token makes session<n> (its nth join); a forgotten token gets a 401; a poll is
 * held 1 s; a post gets one id per txn, as the server dedupes them. `hang` picks the
 * requests that never answer and ignore their signal: a half-open connection in a fetch that never gives up.
 */
export class FakeChatServer {
  readonly requests: FakeRequest[] = [];
  readonly forgotten = new Set<string>();
  #ids = new Map<string, number>();
  #waiters = new Set<() => void>();

  constructor(readonly hang: (request: FakeRequest, nth: number) => boolean = () => false) {}

  readonly fetch: typeof fetch = async (input, init) => {
    const request: FakeRequest = { ...describeRequest(input as string, init), signal: init?.signal ?? undefined };
    this.requests.push(request);
    for (const waiter of [...this.#waiters]) waiter();
    const path = request.path.split("?")[0]!;
    const nth = this.requests.filter((r) => r.path.split("?")[0] === path).length;
    if (this.hang(request, nth)) return new Promise<Response>(() => undefined);
    const token = request.headers.get("authorization")?.slice("Bearer ".length);
    // A join with a live session's token stays in that session, as on the server.
    if (path === "/api/join") return jsonResponse(200, { token: token ?? `session${nth}`, name: "dora", room: "lobby", cursor: 1, members: ["dora"] });
    if (token !== undefined && this.forgotten.has(token)) return jsonResponse(401, { error: { code: "unauthorized", message: "no such session" } });
    if (path === "/api/poll") return heldPoll(init, 1000, 1);
    if (path === "/api/messages") {
      const { txn } = request.body as { txn: string };
      if (!this.#ids.has(txn)) this.#ids.set(txn, this.#ids.size + 2);
      return jsonResponse(201, { id: this.#ids.get(txn) });
    }
    return jsonResponse(404, { error: { code: "not_found", message: "no" } });
  };

  /** The requests to this path (without its query), in order. */
  to(path: string): FakeRequest[] {
    return this.requests.filter((r) => r.path.split("?")[0] === path);
  }

  /** Resolves once `count` requests to `path` were made; rejects after `ms`. */
  seen(path: string, count: number, ms = 4000): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const waiter = (): void => {
          if (this.to(path).length < count) return;
          this.#waiters.delete(waiter);
          resolve();
        };
        this.#waiters.add(waiter);
        waiter();
      }),
      ms,
      `${count} requests to ${path}`,
    );
  }
}
