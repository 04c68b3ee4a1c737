import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync, renameSync, unlinkSync, write, writeSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";

/**
 * Durable file steps. A file replaced is written beside, synced, renamed over
 * the old one, then its directory synced: a crash at any point leaves the old
 * file or the new one, whole. A write that fails removes what it began (a full
 * disk is left no fuller, and no partial file stays behind).
 */

/** Replaces DIR/name with the chunks, in order (the start's compaction: before the server serves). */
export function replaceFileSync(dir: string, name: string, chunks: readonly Buffer[]): void {
  const tmp = join(dir, `${name}.tmp`);
  const fd = openSync(tmp, "w", 0o600);
  try {
    for (const chunk of chunks) writeAllSync(fd, chunk);
    fdatasyncSync(fd);
  } catch (error) {
    closeSync(fd);
    removeSync(tmp);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(tmp, join(dir, name));
  } catch (error) {
    removeSync(tmp);
    throw error;
  }
  syncDirSync(dir);
}

/** The chunks, in order, as a whole synced file at path (to be renamed over another by the caller); removed if that fails. */
export async function writeSynced(path: string, chunks: readonly Buffer[]): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    for (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length; ) offset += (await file.write(chunk, offset, chunk.length - offset)).bytesWritten;
    }
    await file.datasync();
  } catch (error) {
    await file.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw error;
  }
  await file.close();
}

export function syncDirSync(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function removeSync(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there: nothing to remove.
  }
}

export function writeAllSync(fd: number, data: Buffer): void {
  for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset, data.length - offset);
}

/** Appends all of data (the fd is opened with "a"); a short write continues where it stopped. */
export function appendAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (offset: number): void => {
      write(fd, data, offset, data.length - offset, null, (error, written) => {
        if (error) return reject(error);
        if (offset + written < data.length) return step(offset + written);
        resolve();
      });
    };
    step(0);
  });
}

/** fdatasync: the appended bytes and the file's new length are on disk (no need to sync mtime). */
export function dataSync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}
