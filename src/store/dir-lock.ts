import { closeSync, fdatasyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

export const LOCK_FILE = "pollchat.lock";

/** Who holds a lock: a pid alone is not enough, pids are recycled (pollchat is often pid 1 in a container). */
export interface LockHolder {
  pid: number;
  /** Linux: the process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot). */
  start?: string;
  /** Linux: the boot it started in (/proc/sys/kernel/random/boot_id): a start time means nothing across boots. */
  boot?: string;
}

/**
 * One server per --data-dir (spec §7): DIR/pollchat.lock names the process
 * that holds DIR. A lock whose process is gone (kill -9, a crash, a container
 * restarted with the same pid) is stale and taken over; a live one refuses the start.
 *
 * The lock is made whole before it appears (written to a file of our own,
 * synced, then hard-linked to its name, which fails if one exists), so no
 * one ever reads a half-written lock and takes it for a stale one.
 */
export class DirLock {
  readonly path: string;
  readonly #holder: LockHolder;
  #released = false;

  private constructor(path: string, holder: LockHolder) {
    this.path = path;
    this.#holder = holder;
  }

  /** Takes DIR's lock, or throws an Error whose message is one line saying why not. Leaves no file behind when it fails. */
  static acquire(dir: string): DirLock {
    const path = join(dir, LOCK_FILE);
    const holder = identify(process.pid) ?? { pid: process.pid };
    const text = JSON.stringify(holder) + "\n";
    const tmp = `${path}.${process.pid}.tmp`;
    writeNewSynced(tmp, text);
    try {
      // A stale lock moved aside, then ours; a few rounds only: more would mean other starters keep racing us.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (create(path, tmp, text)) return new DirLock(path, holder);
        const found = readIfThere(path);
        if (found === undefined) continue; // released between our two steps: try again
        const other = parseHolder(found);
        if (other !== undefined && isAlive(other)) {
          const who = other.pid === process.pid ? "this process" : `pollchat pid ${other.pid}`;
          throw new Error(`${dir} is in use by ${who} (${LOCK_FILE}): one server per directory`);
        }
        takeOverStale(path, found);
      }
      throw new Error(`${dir}: could not take ${LOCK_FILE}: other servers keep starting on it`);
    } finally {
      removeIfThere(tmp);
    }
  }

  /** Gives DIR up (close()): removes the lock if it is still ours. Never throws: a lock left behind is stale once we are gone. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const found = readQuietly(this.path);
    const holder = found === undefined ? undefined : parseHolder(found);
    if (holder && sameHolder(holder, this.#holder)) removeIfThere(this.path);
  }
}

/** This process's identity as a lock records it, or undefined without /proc (then the pid alone is checked). */
export function identify(pid: number): LockHolder | undefined {
  const stat = readQuietly(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[22 - 3];
  if (start === undefined || !/^\d+$/.test(start)) return undefined;
  const boot = readQuietly("/proc/sys/kernel/random/boot_id")?.trim();
  return boot ? { pid, start, boot } : { pid, start };
}

/** Whether the process a lock names still runs: the same pid, and (where known) the same start time and boot. */
export function isAlive(holder: LockHolder): boolean {
  if (holder.start !== undefined && readQuietly("/proc/self/stat") !== undefined) {
    const now = identify(holder.pid);
    if (now === undefined) return false; // no such process
    if (holder.boot !== undefined && now.boot !== undefined && holder.boot !== now.boot) return false;
    return now.start === holder.start;
  }
  // No /proc here (or an old lock without a start time): the pid is all there is to ask about.
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function parseHolder(text: string): LockHolder | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return undefined;
  const holder: LockHolder = { pid: v.pid as number };
  if (typeof v.start === "string") holder.start = v.start;
  if (typeof v.boot === "string") holder.boot = v.boot;
  return holder;
}

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.pid === b.pid && a.start === b.start && a.boot === b.boot;
}

/** Makes the lock from our whole file; false when one exists. */
function create(path: string, tmp: string, text: string): boolean {
  try {
    linkSync(tmp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    // A file system without hard links: exclusive create, then the content (a reader may see it empty for a moment).
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error;
  }
  try {
    writeNewSynced(path, text, "wx");
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

/**
 * Moves a stale lock aside by rename (atomic: of two starters taking it over,
 * one gets it) and checks that what moved is the lock judged stale: if a
 * racing starter had already replaced it with a live one, that one goes back.
 */
function takeOverStale(path: string, judged: string): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (readIfThere(aside) !== judged) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone made a lock meanwhile: theirs stands.
    }
  }
  removeIfThere(aside);
}

/** A new file with `text`, synced; removed again if writing it fails (a full disk leaves nothing behind). */
function writeNewSynced(path: string, text: string, flags = "w"): void {
  const fd = openSync(path, flags, 0o600);
  try {
    const data = Buffer.from(text);
    for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset, data.length - offset);
    fdatasyncSync(fd);
  } catch (error) {
    closeSync(fd);
    removeIfThere(path);
    throw error;
  }
  closeSync(fd);
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** A file that may be gone or unreadable (a /proc file of a process that ended, a lock): undefined then. */
function readQuietly(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove.
  }
}
