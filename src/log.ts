/**
 * One line per notable event (start, stop, join, leave, error), as text or as
 * JSON. Errors and warnings go to stderr, the rest to stdout. A library user
 * gets no lines unless asking for them (level "silent" by default).
 */

export type LogLevel = "silent" | "error" | "warn" | "info" | "debug";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | undefined>;

export const LOG_LEVELS: readonly LogLevel[] = ["silent", "error", "warn", "info", "debug"];
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

export interface Logger {
  error(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
  /** True when lines of this level are written: callers skip building costly fields otherwise. */
  enabled(level: Exclude<LogLevel, "silent">): boolean;
  /** Resolves once every line written so far has been handed to the OS. */
  flush(): Promise<void>;
}

export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevel;
  /** @default "text" */
  format?: LogFormat;
  /** Where info and debug lines go. @default process.stdout */
  out?: NodeJS.WritableStream;
  /** Where error and warn lines go. @default process.stderr */
  err?: NodeJS.WritableStream;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export function createLogger(options: LoggerOptions = {}): Logger {
  const rank = RANK[options.level ?? "info"];
  const format = options.format ?? "text";
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const now = options.now ?? Date.now;

  const write = (level: Exclude<LogLevel, "silent">, event: string, fields: LogFields = {}): void => {
    if (RANK[level] > rank) return;
    const time = new Date(now()).toISOString();
    const line = format === "json" ? jsonLine(time, level, event, fields) : textLine(time, level, event, fields);
    (RANK[level] <= RANK.warn ? err : out).write(line);
  };

  return {
    error: (event, fields) => write("error", event, fields),
    warn: (event, fields) => write("warn", event, fields),
    info: (event, fields) => write("info", event, fields),
    debug: (event, fields) => write("debug", event, fields),
    enabled: (level) => RANK[level] <= rank,
    // A silent logger touches no stream at all, not even to flush.
    flush: () => (rank === 0 ? Promise.resolve() : Promise.all([drain(out), drain(err)]).then(() => undefined)),
  };
}

/** A logger that writes nothing: the library's default. */
export const silentLogger: Logger = createLogger({ level: "silent" });

function jsonLine(time: string, level: string, event: string, fields: LogFields): string {
  // time, level and event first, and a field cannot overwrite them.
  return JSON.stringify({ ...fields, time, level, event }, ["time", "level", "event", ...Object.keys(fields)]) + "\n";
}

/** `2025-01-01T00:00:00.000Z info join name=alice room=lobby`; values with spaces or quotes are quoted. */
function textLine(time: string, level: string, event: string, fields: LogFields): string {
  let line = `${time} ${level} ${event}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = String(value);
    line += ` ${key}=${/^[^\s"=\\]+$/.test(text) ? text : JSON.stringify(text)}`;
  }
  return line + "\n";
}

/** An empty write calls back once everything before it is written out. */
function drain(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    if ((stream as { writable?: boolean }).writable === false) return resolve();
    stream.write("", () => resolve());
  });
}

/** An unexpected error as one log field: its stack when it has one. */
export function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
