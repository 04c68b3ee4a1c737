import { connect, type Socket } from "node:net";

/** A line-oriented TCP client, as `nc` would be: collects lines, awaits the ones a test names. */
export class LineClient {
  readonly socket: Socket;
  readonly lines: string[] = [];
  #buffer = "";
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setEncoding("utf8");
    this.socket.on("data", (text: string) => {
      this.#buffer += text;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        this.lines.push(line);
        this.#waiters = this.#waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
      }
    });
    this.closed = new Promise((resolve) => this.socket.on("close", () => resolve()));
  }

  /** Resolves with the first line (already seen or still to come) that passes the test. */
  waitFor(test: (line: string) => boolean, what = "a line", timeoutMs = 5000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      this.#waiters.push({ test, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Connects, answers the name prompt and waits for its own join notice. */
  static async named(port: number, name: string): Promise<LineClient> {
    const client = new LineClient(port);
    await client.waitFor((l) => l === "What is your name?", "the name prompt");
    client.send(`${name}\n`);
    await client.waitFor((l) => l === `* ${name} joined lobby`, `${name}'s join`);
    return client;
  }
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Reads a text/event-stream with fetch, as a browser's EventSource would; events arrive in order. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly status: Promise<number>;
  readonly #controller = new AbortController();
  #waiters: { test: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];

  constructor(url: string, headers: Record<string, string>) {
    this.status = this.#read(url, headers);
  }

  async #read(url: string, headers: Record<string, string>): Promise<number> {
    const res = await fetch(url, { headers, signal: this.#controller.signal });
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            this.#frame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // aborted by close()
      }
    })();
    return res.status;
  }

  #frame(frame: string): void {
    const event: SseEvent = { data: "" };
    let isComment = true;
    for (const line of frame.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") event.id = value;
      else if (field === "event") event.event = value;
      else if (field === "data") event.data += value;
      else continue;
      isComment = false;
    }
    if (isComment || event.data === "") return;
    this.events.push(event);
    this.#waiters = this.#waiters.filter((w) => (w.test(event) ? (w.resolve(event), false) : true));
  }

  waitFor(test: (e: SseEvent) => boolean, what = "an event", timeoutMs = 5000): Promise<SseEvent> {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      this.#waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  close(): void {
    this.#controller.abort();
  }
}
