/** Where a Redis server is and how to log in, as read from a `redis://` URL. */
export interface RedisTarget {
  host: string;
  port: number;
  /** SELECTed at every connect (0, the default, is not sent). */
  db: number;
  /** With `password`: `AUTH username password` (an ACL user); without: `AUTH password`. */
  username?: string;
  password?: string;
  /** The URL without its password, for log lines and errors. */
  display: string;
}

const DEFAULT_PORT = 6379;
const MAX_DB = 2 ** 31 - 1;

/**
 * Reads `redis://[[username]:password@]host[:port][/db]`. Anything else is
 * refused with an Error whose message is one line naming what is wrong (and
 * never the password): other schemes (`rediss://` TLS and unix sockets are
 * not supported), a username without a password, a query or fragment, a db
 * that is not a non-negative integer.
 */
export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error("not a URL; expected redis://[:password@]host:port[/db]");
  }
  if (url.protocol !== "redis:") {
    const why = url.protocol === "rediss:" ? " (TLS is not supported)" : "";
    throw new Error(`unsupported scheme ${JSON.stringify(url.protocol)}${why}; expected redis://[:password@]host:port[/db]`);
  }
  const host = url.hostname.startsWith("[") && url.hostname.endsWith("]") ? url.hostname.slice(1, -1) : url.hostname;
  if (host === "") throw new Error("no host; expected redis://[:password@]host:port[/db]");
  const port = url.port === "" ? DEFAULT_PORT : Number(url.port);
  if (port === 0) throw new Error("port 0; expected redis://[:password@]host:port[/db]");
  if (url.search !== "" || url.hash !== "") throw new Error("a query or fragment is not supported; expected redis://[:password@]host:port[/db]");
  const db = parseDb(url.pathname);
  const username = decode(url.username, "username");
  const password = decode(url.password, "password");
  // `redis://secret@host` reads as a username by the URL standard and as a password by some clients: refused, not guessed.
  if (username !== "" && password === "") throw new Error("a username without a password; write redis://:password@host or redis://user:password@host");
  const shownHost = host.includes(":") ? `[${host}]` : host;
  const display = `redis://${username === "" ? "" : `${url.username}@`}${shownHost}:${port}${db === 0 ? "" : `/${db}`}`;
  return {
    host,
    port,
    db,
    ...(username !== "" ? { username } : {}),
    ...(password !== "" ? { password } : {}),
    display,
  };
}

function parseDb(path: string): number {
  if (path === "" || path === "/") return 0;
  const digits = path.slice(1);
  if (!/^\d{1,10}$/.test(digits) || Number(digits) > MAX_DB) throw new Error(`database ${JSON.stringify(digits)} is not a number from 0; expected redis://host:port/db`);
  return Number(digits);
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error(`the ${what} is not valid percent-encoding`);
  }
}
