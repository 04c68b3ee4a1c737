// Requests to the JSON API (spec §4) for the client library: one place sends
// the token, and turns every failure into a ClientError the retry loops judge.

/** A failed request. `status` 0: the network failed, the request timed out, or a stream broke. */
export class ClientError extends Error {
  override readonly name = "ClientError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** From Retry-After (429, 503): wait at least this long before trying again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Worth trying again later: the network failed, the server is busy or restarting. Other 4xx never heal by themselves. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof ClientError)) return true;
  return error.status === 0 || error.status >= 500 || error.status === 429 || error.status === 408;
}

/** Exponential with jitter, 250 ms up to `maxMs`, so a restarted server is not hit by every client at once. */
export function backoffMs(attempt: number, maxMs: number, retryAfterMs?: number): number {
  const base = Math.min(maxMs, 250 * 2 ** Math.max(0, Math.min(attempt, 20) - 1));
  return Math.max(base / 2 + Math.random() * (base / 2), retryAfterMs ?? 0);
}

/** Waits that end early when woken (back online, "retry now") or aborted. */
export class Waker {
  #wakers = new Set<() => void>();

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakers.add(done);
      signal?.addEventListener("abort", done);
    });
  }

  wake(): void {
    for (const done of [...this.#wakers]) done();
  }
}

export interface RequestOptions {
  method?: string;
  token?: string;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Gives up after this long (ClientError 0, "timeout"): a half-open connection never answers, and a browser's fetch never gives up on its own. */
  timeoutMs?: number;
}

/** The fetch the library uses; a program may pass its own (a proxy agent, a test double). */
export type Fetch = typeof fetch;

/**
 * Sends a request and answers the parsed JSON body. The token goes in
 * Authorization, never the cookie (`credentials: "omit"`): the cookie is
 * shared by every tab, and a second tab must be able to be a second person.
 */
export async function requestJson(fetchFn: Fetch, url: string, options: RequestOptions = {}): Promise<unknown> {
  const { signal, timeoutMs } = options;
  if (signal === undefined && timeoutMs === undefined) return answerOf(fetchFn, url, options);
  // A signal of our own: the caller's (maybe long-lived) one gets no listener that outlives this request, fetch's included.
  const controller = new AbortController();
  const unhook = onAbort(signal, () => controller.abort());
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
  // Settles at the abort even should fetch not (a fetch that ignores its signal, a body that never ends).
  const aborted = new Promise<never>((_, reject) => onAbort(controller.signal, () => reject(new ClientError(0, "aborted", "The request was aborted."))));
  try {
    return await Promise.race([answerOf(fetchFn, url, { ...options, signal: controller.signal }), aborted]);
  } catch (error) {
    if (timedOut) throw new ClientError(0, "timeout", `The server did not answer within ${timeoutMs} ms.`);
    throw networkError(error, controller.signal);
  } finally {
    clearTimeout(timer);
    unhook();
  }
}

/** Calls `fn` once `signal` aborts (at once if it has); answers what unhooks it, for a signal that outlives its use. */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    fn();
    return () => undefined;
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}

/** The request itself: the parsed body, or the ClientError of the answer's status. */
async function answerOf(fetchFn: Fetch, url: string, options: RequestOptions): Promise<unknown> {
  const res = await send(fetchFn, url, { ...options, headers: { accept: "application/json", ...options.headers } });
  let text: string;
  try {
    text = await res.text();
  } catch (error) {
    throw networkError(error, options.signal);
  }
  const data = parseJson(text);
  if (!res.ok) throw errorOf(res, data);
  return data;
}

/** fetch, with the token and body set, and a network failure turned into ClientError(0). */
export async function send(fetchFn: Fetch, url: string, { method = "GET", token, body, signal, headers = {} }: RequestOptions): Promise<Response> {
  const all: Record<string, string> = { ...headers };
  if (body !== undefined) all["content-type"] = "application/json";
  if (token !== undefined) all.authorization = `Bearer ${token}`;
  try {
    return await fetchFn(url, {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      signal,
    });
  } catch (error) {
    throw networkError(error, signal);
  }
}

/** The ClientError of an answer with an error status; `data` is its parsed body. */
export function errorOf(res: Response, data: unknown): ClientError {
  const seconds = Number(res.headers.get("retry-after"));
  const error = field(data, "error");
  const code = field(error, "code");
  const message = field(error, "message");
  return new ClientError(
    res.status,
    typeof code === "string" ? code : `http_${res.status}`,
    typeof message === "string" ? message : `The server answered ${res.status}.`,
    Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
  );
}

export function networkError(error: unknown, signal?: AbortSignal): ClientError {
  if (error instanceof ClientError) return error;
  if (signal?.aborted) return new ClientError(0, "aborted", "The request was aborted.");
  return new ClientError(0, "network", `The server cannot be reached (${error instanceof Error ? error.message : String(error)}).`);
}

/** A property of a parsed JSON value, when it is an object. */
export function field(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

/** A whole-number property of a parsed JSON value. */
export function numberField(value: unknown, key: string): number | undefined {
  const n = field(value, key);
  return typeof n === "number" && Number.isSafeInteger(n) ? n : undefined;
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}
