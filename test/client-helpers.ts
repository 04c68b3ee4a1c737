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
