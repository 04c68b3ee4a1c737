import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { fdatasync, write } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

/**
 * Durable file steps. A file replaced is written beside, synced, renamed over
 * the old one, then its directory synced: a crash at any point leaves the old
 * file or the new one, whole.
 */

export function replaceFileSync(dir: string, name: string, data: Buffer): void {
  const tmp = join(dir, `${name}.tmp`);
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeAllSync(fd, data);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  syncDirSync(dir);
}

/** A whole file, synced, at path (to be renamed over another by the caller). */
export async function writeSynced(path: string, data: Buffer): Promise<void> {
  const file = await open(path, "w", 0o600);
  try {
    await file.writeFile(data);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/** A new file, whole and synced, never replacing one (the set-aside lines). */
export function writeNewFileSync(dir: string, name: string, data: Buffer): void {
  const fd = openSync(join(dir, name), "wx", 0o600);
  try {
    writeAllSync(fd, data);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDirSync(dir);
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

function writeAllSync(fd: number, data: Buffer): void {
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
