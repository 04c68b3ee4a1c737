import { ChatError } from "../errors.js";

/**
 * A strictly decoded query string. Unlike URLSearchParams it refuses what it
 * cannot decode (bad %-escapes, invalid UTF-8) instead of guessing, and a
 * parameter the server reads may appear only once. Keys are only ever
 * compared, never used as property names, so "__proto__" is just a key.
 */
export class Query {
  /** Key, value, key, value...: a query has a handful of parameters, and a scan beats building a Map per request. */
  readonly #pairs: string[] = [];

  constructor(search: string) {
    // The next "=" is looked up again only once passed: one scan of the whole string,
    // not one per parameter (a query of many "&" and no "=" must not cost n²).
    let eq = -1;
    for (let start = 0; start < search.length; ) {
      let end = search.indexOf("&", start);
      if (end < 0) end = search.length;
      if (end > start) {
        if (eq !== Infinity && eq < start) {
          eq = search.indexOf("=", start);
          if (eq < 0) eq = Infinity;
        }
        const split = eq < end;
        this.#pairs.push(decodeComponent(search.slice(start, split ? eq : end)), split ? decodeComponent(search.slice(eq + 1, end)) : "");
      }
      start = end + 1;
    }
  }

  /** The value of a parameter; a repeated one is an error (which of them was meant?). */
  get(key: string): string | undefined {
    const i = this.#find(key, 0);
    if (i < 0) return undefined;
    if (this.#find(key, i + 2) >= 0) throw new ChatError("repeated_parameter", `${key} is given more than once.`);
    return this.#pairs[i + 1];
  }

  has(key: string): boolean {
    return this.#find(key, 0) >= 0;
  }

  #find(key: string, from: number): number {
    for (let i = from; i < this.#pairs.length; i += 2) if (this.#pairs[i] === key) return i;
    return -1;
  }
}

function decodeComponent(raw: string): string {
  // Most names, cursors and timeouts have nothing to decode: skip the regex and the decoder.
  if (raw.indexOf("%") < 0 && raw.indexOf("+") < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    throw new ChatError("bad_encoding");
  }
}

/** `http://host:port` at the start of an absolute-form target (RFC 9112 §3.2.2). */
const ORIGIN = /^https?:\/\/[^/?#]*/i;

/**
 * The origin-form of a request target: an absolute-form one, which a proxy
 * sends (`GET http://host:port/?name=N`), without its scheme and authority.
 * A server must accept both; which host was asked for does not matter here.
 */
export function originForm(url: string | undefined): string {
  const target = url ?? "/";
  // The usual origin-form ("/..."): no regex.
  if (target.charCodeAt(0) === 47) return target;
  const origin = ORIGIN.exec(target);
  if (!origin) return target;
  const rest = target.slice(origin[0].length);
  return rest.startsWith("/") ? rest : `/${rest}`;
}

/** Splits a request target into its path and query; the path keeps its raw %-escapes. */
export function splitTarget(url: string | undefined): { path: string; query: Query } {
  const target = originForm(url);
  const q = target.indexOf("?");
  return q < 0
    ? { path: target, query: new Query("") }
    : { path: target.slice(0, q), query: new Query(target.slice(q + 1)) };
}
