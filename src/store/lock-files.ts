import * as fs from "node:fs";
import { randomBytes } from "node:crypto";

export const LOCK_FILE = "pollchat.lock";

/**
 * The file-system calls the lock makes, as one object: the lock takes it as an
 * option, so a test can run code between any two of them (another starter,
 * as if scheduled there) and prove the take-over safe under every interleaving.
 */
export interface LockFs {
  openSync(path: string, flags: string, mode?: number): number;
  closeSync(fd: number): void;
  fstatSync(fd: number): { ino: number; mtimeMs: number };
  statSync(path: string): { ino: number; mtimeMs: number };
  readFileSync(fd: number, encoding: "utf8"): string;
  writeSync(fd: number, data: Buffer, offset: number, length: number): number;
  fdatasyncSync(fd: number): void;
  futimesSync(fd: number, atime: Date, mtime: Date): void;
  linkSync(existing: string, link: string): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

export const nodeFs: LockFs = {
  openSync: (path, flags, mode) => fs.openSync(path, flags, mode),
  closeSync: (fd) => fs.closeSync(fd),
  fstatSync: (fd) => fs.fstatSync(fd),
  statSync: (path) => fs.statSync(path),
  readFileSync: (fd, encoding) => fs.readFileSync(fd, encoding),
  writeSync: (fd, data, offset, length) => fs.writeSync(fd, data, offset, length),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  futimesSync: (fd, atime, mtime) => fs.futimesSync(fd, atime, mtime),
  linkSync: (existing, link) => fs.linkSync(existing, link),
  renameSync: (from, to) => fs.renameSync(from, to),
  unlinkSync: (path) => fs.unlinkSync(path),
};

/** What a look at a lock file found: its bytes, inode and mtime. */
export interface Look {
  text: string;
  ino: number;
  mtimeMs: number;
}

/** A name part no other start picks (pid and random): two starts, even in one process, never share a file. */
export function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(6).toString("hex")}`;
}

export function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** The file as it is now (opened first: on NFS an open revalidates what stat says), or undefined if there is none. */
export function look(f: LockFs, path: string): Look | undefined {
  let fd: number;
  try {
    fd = f.openSync(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return undefined;
    throw error;
  }
  try {
    const stat = f.fstatSync(fd);
    return { text: f.readFileSync(fd, "utf8"), ino: stat.ino, mtimeMs: stat.mtimeMs };
  } finally {
    f.closeSync(fd);
  }
}

export function sameLook(a: Look | undefined, b: Look): boolean {
  return a !== undefined && a.ino === b.ino && a.text === b.text && a.mtimeMs === b.mtimeMs;
}

/** Makes `path` from our whole file `tmp` (a hard link: fails if it exists); false when one exists. */
export function create(f: LockFs, path: string, tmp: string, text: string): boolean {
  try {
    f.linkSync(tmp, path);
    return true;
  } catch (error) {
    const code = codeOf(error);
    if (code === "EEXIST") return false;
    // A file system without hard links: exclusive create, then the content (a reader may see it empty for a moment: it waits on the lease).
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error;
  }
  try {
    writeNewSynced(f, path, text, "wx");
    return true;
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false;
    throw error;
  }
}

/** A new file with `text`, synced; removed again if writing it fails (a full disk leaves nothing behind). */
export function writeNewSynced(f: LockFs, path: string, text: string, flags = "w"): void {
  const fd = f.openSync(path, flags, 0o600);
  try {
    const data = Buffer.from(text);
    for (let offset = 0; offset < data.length; ) offset += f.writeSync(fd, data, offset, data.length - offset);
    f.fdatasyncSync(fd);
  } catch (error) {
    f.closeSync(fd);
    removeIfThere(f, path);
    throw error;
  }
  f.closeSync(fd);
}

/** Sets the file's mtime to now. */
export function touch(f: LockFs, path: string): void {
  const fd = f.openSync(path, "r");
  try {
    const now = new Date();
    f.futimesSync(fd, now, now);
  } finally {
    f.closeSync(fd);
  }
}

export function removeIfThere(f: LockFs, path: string): void {
  try {
    f.unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove.
  }
}
