import { ChatError } from "../errors.js";

/**
 * A strictly decoded query string. Unlike URLSearchParams it refuses what it
 * cannot decode (bad %-escapes, invalid UTF-8) instead of guessing, and a
 * parameter the server reads may appear only once. Keys live in a Map, so
 * "__proto__" is just a key.
 */
export class Query {
  readonly #values = new Map<string, string>();
  /** Made only when a key repeats: most queries never need it. */
  #repeated: Set<string> | undefined;

  constructor(search: string) {
    for (const part of search.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const key = decodeComponent(eq < 0 ? part : part.slice(0, eq));
      const value = decodeComponent(eq < 0 ? "" : part.slice(eq + 1));
      if (this.#values.has(key)) (this.#repeated ??= new Set()).add(key);
      else this.#values.set(key, value);
    }
  }

  /** The value of a parameter; a repeated one is an error (which of them was meant?). */
  get(key: string): string | undefined {
    if (this.#repeated?.has(key)) throw new ChatError("repeated_parameter", `${key} is given more than once.`);
    return this.#values.get(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
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

/** Splits a request target into its path and query; the path keeps its raw %-escapes. */
export function splitTarget(url: string | undefined): { path: string; query: Query } {
  const target = url ?? "/";
  const q = target.indexOf("?");
  return q < 0
    ? { path: target, query: new Query("") }
    : { path: target.slice(0, q), query: new Query(target.slice(q + 1)) };
}
