import { request, type ClientRequest, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import { open, sleep } from "./property-hostile-net.js";

/** The long-lived client ends of the hostile property: TCP line connections and SSE streams, each with an `error` listener. */

/** A TCP gateway connection read line by line, as `nc` would be. */
export class LineConnection {
  readonly socket: Socket;
  readonly lines: string[] = [];
  #buffer = "";
  #closed = false;
  readonly closed: Promise<void>;

  constructor(port: number, sink?: (text: string) => void) {
    this.socket = connect(port, "127.0.0.1");
    open.add(this.socket);
    this.socket.setEncoding("utf8");
    this.socket.on("error", () => {});
    this.socket.on("data", (text: string) => {
      sink?.(text);
      this.#buffer += text;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.#buffer.slice(0, nl));
        this.#buffer = this.#buffer.slice(nl + 1);
      }
    });
    this.closed = new Promise((resolve) =>
      this.socket.on("close", () => {
        this.#closed = true;
        open.delete(this.socket);
        resolve();
      }),
    );
  }

  /** Polls the lines seen so far for one passing the test, within a bound; false when none came (or the connection closed). */
  async waitFor(test: (line: string) => boolean, timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.some(test)) {
      if (this.#closed || Date.now() > deadline) return false;
      await sleep(10);
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface SseFrame {
  id: number | undefined;
  event: string;
  data: string;
}

/** GET /api/events over node:http: frames as they come; pause() stops reading, so the server's output backs up. */
export class SseStream {
  readonly req: ClientRequest;
  res: IncomingMessage | undefined;
  status: number | undefined;
  readonly closed: Promise<void>;
  /** The answer's status once its head came; undefined if the stream closed first. */
  readonly responded: Promise<number | undefined>;
  #buffer = "";

  constructor(
    port: number,
    path: string,
    headers: Record<string, string>,
    onFrame: (frame: SseFrame) => void,
    opts: { sink?: (text: string) => void; paused?: boolean } = {},
  ) {
    let onClose = (): void => {};
    let onResponse = (_status: number | undefined): void => {};
    this.closed = new Promise((resolve) => (onClose = resolve));
    this.responded = new Promise((resolve) => (onResponse = resolve));
    this.req = request({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      this.res = res;
      this.status = res.statusCode;
      onResponse(res.statusCode);
      res.setEncoding("utf8");
      res.on("error", () => {});
      if (opts.paused) res.pause();
      res.on("data", (text: string) => {
        opts.sink?.(text);
        this.#buffer += text;
        let end: number;
        while ((end = this.#buffer.indexOf("\n\n")) >= 0) {
          const frame = parseFrame(this.#buffer.slice(0, end));
          this.#buffer = this.#buffer.slice(end + 2);
          if (frame) onFrame(frame);
        }
      });
    });
    open.add(this.req);
    this.req.on("error", () => {});
    this.req.on("close", () => {
      open.delete(this.req);
      onResponse(undefined);
      onClose();
    });
    this.req.end();
  }

  pause(): void {
    this.res?.pause();
  }

  /**
   * Reads one chunk every `everyMs`, paused in between: a reader so slow that
   * the server's output stays buffered for a long while, draining bit by bit.
   */
  trickle(everyMs: number): void {
    const timer = setInterval(() => {
      const res = this.res;
      if (res === undefined || !res.isPaused()) return;
      res.once("data", () => res.pause());
      res.resume();
    }, everyMs);
    void this.closed.then(() => clearInterval(timer));
  }

  resume(): void {
    this.res?.resume();
  }

  destroy(): void {
    this.req.destroy();
  }
}

function parseFrame(text: string): SseFrame | undefined {
  const frame: SseFrame = { id: undefined, event: "message", data: "" };
  let any = false;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") frame.id = Number(value);
    else if (field === "event") frame.event = value;
    else if (field === "data") frame.data += value;
    else continue;
    any = true;
  }
  return any && frame.data !== "" ? frame : undefined;
}
