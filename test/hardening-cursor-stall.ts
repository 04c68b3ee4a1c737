import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

/**
 * Holds a --data-dir batch on its way to disk for as long as a test needs, in
 * this process (the server of startServer() runs here): every thread of libuv's
 * pool is kept busy opening a FIFO that has no writer yet, so the log's write
 * and fdatasync (which run on that pool) wait behind them. release() gives each
 * FIFO a writer, the opens return, and the batch goes on.
 */
export interface FileSystemStall {
  release(): Promise<void>;
}

export function stallFileSystem(dir: string): FileSystemStall {
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new Error(`UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE}`);
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `stall-${i}`));
  for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
  // Queued in order ahead of anything the server asks of the pool from now on.
  const readers = fifos.map((fifo) => open(fifo, "r"));
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      for (const fifo of fifos) openWriter(fifo);
      const handles: FileHandle[] = await Promise.all(readers);
      for (const handle of handles) await handle.close();
    },
  };
}

/** Opens and closes the FIFO's write end; a reader blocked in open() counts as there, so this succeeds once its thread runs. */
function openWriter(fifo: string): void {
  const deadline = Date.now() + 5000;
  for (let tries = 0; tries < 100_000; tries++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      return;
    } catch (error) {
      // ENXIO: no reader yet (its open has not reached a thread); try again, briefly.
      if ((error as NodeJS.ErrnoException).code !== "ENXIO" || Date.now() > deadline) throw error;
    }
  }
  throw new Error(`no reader on ${fifo}`);
}
