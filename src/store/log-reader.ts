import { closeSync, openSync, readSync } from "node:fs";

/** Bytes read at a time: the file is never in memory whole, whatever its size. */
export const READ_CHUNK_BYTES = 1024 * 1024;

export interface LineHandlers {
  /** A line without its "\n" (the last one may have none: a torn tail). Its bytes are valid during the call only. */
  line(bytes: Buffer): void;
  /**
   * A line longer than maxLineBytes, in pieces as they are read (never held
   * whole); `end` on its last piece. Valid during the call only.
   */
  overlong(piece: Buffer, end: boolean): void;
}

/**
 * Reads a file line by line in fixed-size chunks, synchronously (restore runs
 * before the server serves). Memory stays within one chunk plus one line of at
 * most maxLineBytes. Returns false when there is no such file.
 */
export function readLinesSync(path: string, handlers: LineHandlers, maxLineBytes: number, chunkBytes = READ_CHUNK_BYTES): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  try {
    const splitter = new LineSplitter(handlers, maxLineBytes);
    const chunk = Buffer.allocUnsafe(chunkBytes);
    for (;;) {
      const read = readSync(fd, chunk, 0, chunkBytes, null);
      if (read === 0) break;
      splitter.push(chunk.subarray(0, read));
    }
    splitter.end();
  } finally {
    closeSync(fd);
  }
  return true;
}

const NEWLINE = 0x0a;

/** Cuts bytes into lines as they come; the start of a line is carried from one push to the next. */
export class LineSplitter {
  readonly #handlers: LineHandlers;
  readonly #max: number;
  /** The start of a line whose end is not read yet (at most #max bytes, copied: the caller reuses its buffer). */
  #carry: Buffer = Buffer.alloc(0);
  /** Inside a line already found too long: its bytes go to overlong() until its end. */
  #overlong = false;

  constructor(handlers: LineHandlers, maxLineBytes: number) {
    this.#handlers = handlers;
    this.#max = maxLineBytes;
  }

  push(data: Buffer): void {
    let start = 0;
    for (;;) {
      const end = data.indexOf(NEWLINE, start);
      if (end === -1) break;
      this.#lineEnd(data.subarray(start, end));
      start = end + 1;
    }
    const rest = data.subarray(start);
    if (rest.length === 0) return;
    if (this.#overlong) return this.#handlers.overlong(rest, false);
    if (this.#carry.length + rest.length > this.#max) {
      this.#overlong = true;
      if (this.#carry.length > 0) this.#handlers.overlong(this.#carry, false);
      this.#carry = Buffer.alloc(0);
      this.#handlers.overlong(rest, false);
      return;
    }
    this.#carry = Buffer.concat([this.#carry, rest]);
  }

  /** The file ended: a last line without "\n" is a line too (replay judges it). */
  end(): void {
    if (this.#overlong) {
      this.#overlong = false;
      this.#handlers.overlong(Buffer.alloc(0), true);
    } else if (this.#carry.length > 0) {
      const last = this.#carry;
      this.#carry = Buffer.alloc(0);
      this.#handlers.line(last);
    }
  }

  #lineEnd(tail: Buffer): void {
    if (this.#overlong) {
      this.#overlong = false;
      return this.#handlers.overlong(tail, true);
    }
    const line = this.#carry.length === 0 ? tail : Buffer.concat([this.#carry, tail]);
    this.#carry = Buffer.alloc(0);
    if (line.length > this.#max) return this.#handlers.overlong(line, true);
    if (line.length > 0) this.#handlers.line(line);
  }
}
