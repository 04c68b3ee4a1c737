import { closeSync, fdatasyncSync, openSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { syncDirSync, writeAllSync } from "./files.js";

const NEWLINE = Buffer.from("\n");

/**
 * Lines of a log that were no record, copied byte for byte to a file of their
 * own as restore meets them (never collected in memory: one may be a huge
 * line of garbage). The file is made at the first bad line only, with a name
 * no other start picks (time and pid), and never replaces one.
 */
export class SetAsideFile {
  readonly path: string;
  lines = 0;
  bytes = 0;
  #fd = -1;
  #created = false;

  constructor(dir: string, name: string) {
    this.path = join(dir, name);
  }

  /** One whole bad line. */
  line(bytes: Buffer): void {
    this.piece(bytes, true);
  }

  /** Part of a bad line (a long one comes in pieces); `end` closes the line. */
  piece(bytes: Buffer, end: boolean): void {
    if (this.#fd < 0) {
      this.#fd = openSync(this.path, "wx", 0o600);
      this.#created = true;
    }
    writeAllSync(this.#fd, bytes);
    this.bytes += bytes.length;
    if (!end) return;
    writeAllSync(this.#fd, NEWLINE);
    this.lines++;
  }

  /** Makes the file durable (before the log that held the lines is rewritten without them). */
  finish(): void {
    if (this.#fd < 0) return;
    fdatasyncSync(this.#fd);
    closeSync(this.#fd);
    this.#fd = -1;
    syncDirSync(join(this.path, ".."));
  }

  /** The start failed: the log still holds these lines, so their copy goes. */
  discard(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    if (!this.#created) return;
    try {
      unlinkSync(this.path);
    } catch {
      // Never made, or gone already.
    }
  }
}
