import { mkdirSync, rmdirSync, statfsSync, statSync } from "node:fs";
import { join, parse, resolve, sep } from "node:path";

/**
 * File systems that hold kernel state, not files (statfs f_type, linux/magic.h).
 * Node's recursive mkdir loops for ever on some of them (mkdir in /proc fails
 * ENOENT, which it reads as "make the parent first"), so none is walked into.
 */
const VIRTUAL = new Map<number, string>([
  [0x9fa0, "proc"],
  [0x62656572, "sysfs"],
  [0x27e0eb, "cgroup"],
  [0x63677270, "cgroup2"],
  [0x64626720, "debugfs"],
  [0x74726163, "tracefs"],
  [0x73636673, "securityfs"],
  [0x1cd1, "devpts"],
  [0x62656570, "configfs"],
  [0xcafe4a11, "bpf"],
]);
/** Refused by name too, should statfs not tell (they are these file systems on every Linux). */
const VIRTUAL_ROOTS = ["/proc", "/sys"];

/** A path in a one-line message: a name too long to use is too long to print whole. */
export function shortPath(path: string): string {
  return path.length <= 160 ? path : `${path.slice(0, 100)}...${path.slice(-40)} (${path.length} characters)`;
}

/** A start that cannot use DIR, said in one line. */
function refuse(dir: string, why: string): Error {
  return new Error(`data-dir ${shortPath(dir)}: cannot start: ${why}`);
}

/** A system error (EROFS, ENOSPC, ENAMETOOLONG...) as one line, its path shortened. */
export function systemReason(error: NodeJS.ErrnoException): string {
  const message = error.message.replace(/\s*\n\s*/g, " ");
  return error.path === undefined ? message : message.split(error.path).join(shortPath(error.path));
}

/**
 * Makes DIR and any missing parent (--data-dir), one component at a time:
 * each step is one stat and at most one mkdir, so the walk ends after as many
 * steps as the path has components, whatever the file system answers. Refuses,
 * in one line, a path on a virtual file system (/proc, /sys), a file where a
 * directory should be, and any error of the file system (read-only, full, a
 * name too long); what it made is removed again then. Returns the first
 * directory it made (undefined: DIR was there), for a later failed start to remove.
 */
export function prepareDataDir(dir: string): string | undefined {
  const full = resolve(dir);
  const root = parse(full).root;
  for (const top of VIRTUAL_ROOTS) {
    if (full === top || full.startsWith(top + sep)) throw refuse(dir, `${top} is a virtual file system of the kernel: it keeps no data`);
  }
  const made: string[] = [];
  let path = root;
  try {
    for (const name of full.slice(root.length).split(sep).filter((part) => part !== "")) {
      checkNotVirtual(dir, path);
      path = path === root ? root + name : path + sep + name;
      ensureDirectory(dir, path, made);
    }
    // DIR itself, where it was there already (a link to /proc).
    checkNotVirtual(dir, path);
    return made[0];
  } catch (error) {
    undo(made);
    // Our own refusals are one line already; a system error is said with what it was about.
    throw (error as NodeJS.ErrnoException).code === undefined ? error : refuse(dir, systemReason(error as NodeJS.ErrnoException));
  }
}

/**
 * The files a start opens in DIR, where they exist, are regular files (or
 * links to one): a FIFO there would block the start's open for ever, a
 * directory or device make no log.
 */
export function checkFiles(dir: string, names: readonly string[]): void {
  for (const name of names) {
    const path = join(dir, name);
    let stat;
    try {
      stat = statSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw refuse(dir, systemReason(error as NodeJS.ErrnoException));
    }
    if (!stat.isFile()) throw refuse(dir, `${shortPath(path)} is not a regular file`);
  }
}

/** One component: there as a directory, or made now (once: a racing start that made it first is fine). */
function ensureDirectory(dir: string, path: string, made: string[]): void {
  if (isDirectory(dir, path)) return;
  try {
    mkdirSync(path);
    made.push(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Made meanwhile by someone else, or a dangling symbolic link: one more look decides.
    if (!isDirectory(dir, path)) throw refuse(dir, `${shortPath(path)} exists and is not a directory`);
  }
}

/** true: a directory (or a link to one); false: nothing there; a file there is refused. */
function isDirectory(dir: string, path: string): boolean {
  let stat;
  try {
    stat = statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  if (!stat.isDirectory()) throw refuse(dir, `${shortPath(path)} is not a directory`);
  return true;
}

function checkNotVirtual(dir: string, path: string): void {
  const kind = VIRTUAL.get(statfsSync(path).type);
  if (kind !== undefined) throw refuse(dir, `${shortPath(path)} is on a ${kind} file system, which keeps no data`);
}

/** Removes what a failed walk made, deepest first. */
function undo(made: readonly string[]): void {
  for (const path of [...made].reverse()) {
    try {
      rmdirSync(path);
    } catch {
      return; // not empty (another start's now), or not removable: it and its parents stay
    }
  }
}
