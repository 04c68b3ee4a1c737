import { readLinesSync } from "./log-reader.js";
import { replay, type ReplayOptions, type ReplayResult } from "./replay.js";
import { SetAsideFile } from "./set-aside.js";

/** What bounds one line of a log we wrote (validate.ts and the caps): a longer line is garbage. */
export interface LineBounds {
  maxMessage: number;
  maxQueue: number;
  maxSessions: number;
  maxRoomsPerSession: number;
}

const MIN_LINE_BYTES = 4 * 1024 * 1024;

/**
 * The longest line a log of ours can hold, with room to spare: a message
 * (up to 6 bytes a character once JSON-escaped), a session line (an id per
 * queued message, a name per room), a command answer naming every member of a
 * room (/who). A longer line is set aside without ever being held whole.
 */
export function maxLineBytes(b: LineBounds): number {
  return Math.max(MIN_LINE_BYTES, 64 * 1024 + 8 * b.maxMessage + 24 * b.maxQueue + 40 * b.maxRoomsPerSession + 40 * b.maxSessions);
}

/**
 * Reads and replays the log at `path` in bounded memory: fixed-size chunks,
 * line by line; bad lines (and lines past maxLine) are copied to the set-aside
 * file as they are met. Throws when the file cannot be read or the set-aside
 * file cannot be written (then that file is gone again). `tick` is called
 * each line: a long restore is synchronous, and the lock's lease must not lapse meanwhile.
 */
export function restoreLog(path: string, setAside: SetAsideFile, options: ReplayOptions & { maxLine: number; tick?: () => void }): ReplayResult {
  const tick = options.tick;
  try {
    const result = replay(
      (line) => {
        const each = tick === undefined ? line : (bytes: Buffer) => (tick(), line(bytes));
        readLinesSync(path, { line: each, overlong: (piece, end) => setAside.piece(piece, end) }, options.maxLine);
      },
      { ...options, setAside: (bytes) => setAside.line(bytes) },
    );
    setAside.finish();
    return result;
  } catch (error) {
    setAside.discard();
    throw error;
  }
}
