// The JSON API of the spec (§4) as the page uses it. One place builds requests,
// sends the token and turns error answers into ApiError.

/** An answer with an error status; `status` 0 never occurs here (network failures are TypeErrors). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Worth trying again later: the network failed, the server is busy or restarting. 4xx (but 408/429) never heals by itself. */
export function isRetryable(error) {
  if (!(error instanceof ApiError)) return true;
  return error.status >= 500 || error.status === 429 || error.status === 408;
}

export class Api {
  /**
   * The session token, sent as Bearer. The page never relies on the HttpOnly cookie the server also
   * sets: the cookie is shared by every tab, and a second tab must be a second person, not the first one's twin.
   */
  token = undefined;

  async request(method, path, body, { signal } = {}) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const usedToken = this.token;
    if (usedToken !== undefined) headers.authorization = `Bearer ${usedToken}`;
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      signal,
    });
    const text = await res.text();
    let data;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!res.ok) {
      const seconds = Number(res.headers.get("retry-after"));
      const error = new ApiError(
        res.status,
        data?.error?.code ?? `http_${res.status}`,
        data?.error?.message ?? `The server answered ${res.status}.`,
        Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined,
      );
      // Lets a 401 be told apart from one the page has already recovered from (the token changed since).
      error.usedToken = usedToken;
      throw error;
    }
    return data;
  }

  join(name, room) {
    return this.request("POST", "/api/join", { name, room });
  }

  post(text, room, txn) {
    return this.request("POST", "/api/messages", { text, room, txn });
  }

  poll(cursor, timeoutMs, signal) {
    return this.request("GET", `/api/poll?cursor=${encodeURIComponent(cursor)}&timeout=${timeoutMs}`, undefined, { signal });
  }

  leave(room) {
    return this.request("POST", "/api/leave", room === undefined ? {} : { room });
  }

  rooms() {
    return this.request("GET", "/api/rooms");
  }

  room(name) {
    return this.request("GET", `/api/rooms/${encodeURIComponent(name)}`);
  }

  history(name, limit) {
    return this.request("GET", `/api/rooms/${encodeURIComponent(name)}/messages?limit=${limit}`);
  }
}

/** A random idempotency key; crypto.randomUUID needs a secure context, getRandomValues does not. */
export function newTxn() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
