import { request, type IncomingHttpHeaders, type ClientRequest } from "node:http";
import { connect, type Socket } from "node:net";

/**
 * HTTP client ends for the hostile property test, each bounded in time and
 * each with an `error` listener: plain requests and raw pipelined writes, to
 * 127.0.0.1. Everything a client opens (here and in property-hostile-streams.ts)
 * is in `open` until it closes, so a run can cut whatever is left at its end.
 */

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Every socket or request the test has open; teardown destroys what is left. */
export const open = new Set<{ destroy(): void }>();

export interface CallOptions {
  headers?: Record<string, string>;
  body?: string;
  /** The request is destroyed (no answer) after this long: a client that gives up on a held poll. */
  abortAfterMs?: number;
  /** Hard bound on the whole call; past it the request is destroyed and the call answers undefined. @default 8000 */
  deadlineMs?: number;
  /** Told every piece of body text as it arrives, answered or not (what this client saw). */
  sink?: (text: string) => void;
  /** Handed the request, so its client can cut it at a moment of its choosing. */
  onRequest?: (req: ClientRequest) => void;
}

/** One request on its own connection; resolves undefined when no complete answer came (cut, reset, deadline). */
export function call(port: number, method: string, path: string, opts: CallOptions = {}): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: Answer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(abort);
      open.delete(req);
      resolve(answer);
    };
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers["content-length"] = String(Buffer.byteLength(opts.body));
    const req: ClientRequest = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        body += text;
        opts.sink?.(text);
      });
      res.on("end", () => done({ status: res.statusCode!, headers: res.headers, body }));
      res.on("error", () => done(undefined));
      res.on("close", () => done(undefined));
    });
    open.add(req);
    opts.onRequest?.(req);
    req.on("error", () => done(undefined));
    req.on("close", () => setImmediate(() => done(undefined)));
    const deadline = setTimeout(() => (req.destroy(), done(undefined)), opts.deadlineMs ?? 8000);
    const abort = opts.abortAfterMs === undefined ? undefined : setTimeout(() => (req.destroy(), done(undefined)), opts.abortAfterMs);
    req.end(opts.body);
  });
}

/** The id of a seed post's answer, `ok <id>`. */
export function seedId(a: Answer): number | undefined {
  const m = /^ok (\d+)\n$/.exec(a.body);
  return m ? Number(m[1]) : undefined;
}

/** The id of a JSON API post's answer, `201 {"id"}`. */
export function apiId(a: Answer): number | undefined {
  if (a.status !== 201) return undefined;
  try {
    const body = JSON.parse(a.body) as { id?: unknown };
    return typeof body.id === "number" ? body.id : undefined;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Splits a byte stream of HTTP/1.1 answers (pipelined, in request order) into
 * answers. Bodies are Content-Length or chunked; an answer with neither (node's
 * own 400 with Connection: close) has an empty body.
 */
export class AnswerParser {
  readonly answers: Answer[] = [];
  /** When each answer was complete (performance.now()). */
  readonly times: number[] = [];
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const taken = this.#next();
      if (taken === 0) return;
      this.#buffer = this.#buffer.subarray(taken);
    }
  }

  /** Bytes received that are not part of a complete answer yet. */
  get pending(): Buffer {
    return this.#buffer;
  }

  /** Parses one complete answer off the front; returns the bytes it took (0: not complete yet). */
  #next(): number {
    const buf = this.#buffer;
    const headEnd = buf.indexOf("\r\n\r\n");
    if (headEnd < 0) return 0;
    const [statusLine, ...lines] = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
    const headers: IncomingHttpHeaders = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0);
    let at = headEnd + 4;
    let body: Buffer;
    if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (buf.length < at + length) return 0;
      body = buf.subarray(at, at + length);
      at += length;
    } else if (/chunked/i.test(String(headers["transfer-encoding"] ?? ""))) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", at);
        if (lineEnd < 0) return 0;
        const size = parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
        if (buf.length < lineEnd + 2 + size + 2) return 0;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      body = Buffer.alloc(0);
    }
    this.answers.push({ status, headers, body: body.toString("utf8") });
    this.times.push(performance.now());
    return at;
  }
}

/** A raw connection that writes many requests at once and parses the answers as they come. */
export class RawConnection {
  readonly socket: Socket;
  readonly parser = new AnswerParser();
  /** Bytes received in all. */
  received = 0;
  readonly closed: Promise<void>;
  #onData: (() => void) | undefined;

  constructor(port: number, sink?: (text: string) => void) {
    this.socket = connect(port, "127.0.0.1");
    open.add(this.socket);
    this.socket.on("error", () => {});
    this.socket.on("data", (chunk: Buffer) => {
      this.received += chunk.length;
      sink?.(chunk.toString("utf8"));
      this.parser.push(chunk);
      this.#onData?.();
    });
    this.closed = new Promise((resolve) => this.socket.on("close", () => (open.delete(this.socket), resolve())));
  }

  /** Waits until the test holds, the connection closes, or the deadline passes; true if the test held. */
  async until(test: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let closed = false;
    void this.closed.then(() => (closed = true));
    while (!test()) {
      const left = deadline - Date.now();
      if (closed || left <= 0) return test();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.#onData = () => (clearTimeout(timer), resolve());
      });
      this.#onData = undefined;
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
