import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { create, LOCK_FILE, look, nodeFs, removeIfThere, uniqueSuffix, writeNewSynced, type LockFs, type Look } from "./lock-files.js";
import { isAlive, judgedByPid, parseHolder, thisProcess, type LockHolder } from "./lock-holder.js";
import { takeOver, type TakeOver } from "./lock-takeover.js";

export { identify, isAlive, parseHolder, type LockHolder } from "./lock-holder.js";
export { LOCK_FILE } from "./lock-files.js";

/** The lease's timings; tests shorten them. */
export interface LeaseOptions {
  /** How often the holder refreshes the lock file's mtime. @default 2000 */
  refreshMs?: number;
  /** A lock judged by its lease is stale once not refreshed for this long. @default 10000 */
  staleMs?: number;
  /** How long a starter waits for a fresh-looking lease to lapse before it refuses. @default staleMs + 2000 */
  waitMs?: number;
  /** Where a lost lock is reported (its file replaced or removed by someone else). @default stderr */
  warn?: (line: string) => void;
  /** The file-system calls (tests run other starters between them). @default node:fs */
  fs?: LockFs;
}

type Timing = Required<Omit<LeaseOptions, "warn" | "fs">>;

type Verdict = { kind: "stale" } | { kind: "changed" } | { kind: "live"; reason: string };

const STALE: Verdict = { kind: "stale" };
const CHANGED: Verdict = { kind: "changed" };
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * One server per --data-dir (spec §7): DIR/pollchat.lock names the process
 * that holds DIR, and is a lease: the holder sets its mtime every refreshMs
 * (utimes: no disk space needed, works on a full disk).
 *
 * A lock from our own pid namespace on this boot is judged at once by pid and
 * start time (kill -9, a crash, a recycled pid: stale). Any other (another
 * container on this host, another host over NFS, a garbled file) is judged by
 * its lease only, for its pid names nothing here: stale once unrefreshed for
 * staleMs. A starter that finds a fresh-looking one waits, synchronously (the
 * start is synchronous), up to waitMs: it refuses as soon as it sees a refresh,
 * takes the lock over once it lapses. Across boots the mtime was set by another
 * clock: the lock must also be seen unchanged for 1.5 refreshes before it is stale.
 *
 * The lock is made whole before it appears (written to a file of our own,
 * synced, then hard-linked to its name, which fails if one exists), so no
 * one ever reads a half-written lock and takes it for a stale one. A stale
 * lock is replaced atomically among starters (lock-takeover.ts): of several
 * that judged it stale at once, one takes it, the others refuse.
 */
export class DirLock {
  readonly path: string;
  readonly #fd: number;
  readonly #ino: number;
  readonly #text: string;
  readonly #refreshMs: number;
  readonly #warn: (line: string) => void;
  readonly #fs: LockFs;
  #timer: NodeJS.Timeout | undefined;
  #lastRefresh = Date.now();

  private constructor(path: string, text: string, refreshMs: number, warn: (line: string) => void, fs: LockFs) {
    this.path = path;
    this.#text = text;
    this.#refreshMs = refreshMs;
    this.#warn = warn;
    this.#fs = fs;
    this.#fd = fs.openSync(path, "r");
    this.#ino = fs.fstatSync(this.#fd).ino;
    // Unref'd: a lease never keeps a process alive; release() stops it.
    this.#timer = setInterval(() => this.refresh(), refreshMs).unref();
  }

  /**
   * Takes DIR's lock, or throws an Error whose message is one line saying why
   * not. May wait up to waitMs for another namespace's lease to lapse. Leaves
   * no file behind when it fails.
   */
  static acquire(dir: string, options: LeaseOptions = {}): DirLock {
    const refreshMs = options.refreshMs ?? 2000;
    const staleMs = options.staleMs ?? 10_000;
    const timing: Timing = { refreshMs, staleMs, waitMs: options.waitMs ?? staleMs + 2000 };
    const warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    const fs = options.fs ?? nodeFs;
    const path = join(dir, LOCK_FILE);
    const me = thisProcess(refreshMs);
    // A random id besides: every lease's bytes differ, so a take-over's claim names one lease only (lock-takeover.ts).
    const text = JSON.stringify({ ...me, id: randomBytes(8).toString("hex") }) + "\n";
    const tmp = `${path}.${uniqueSuffix()}.tmp`;
    writeNewSynced(fs, tmp, text);
    try {
      // A few rounds only: more would mean other starters keep racing us.
      for (let attempt = 0; attempt < 3; attempt++) {
        if (create(fs, path, tmp, text)) return DirLock.#held(path, text, refreshMs, warn, fs);
        const found = look(fs, path);
        if (found === undefined) continue; // released between our two steps: try again
        let verdict: Verdict | TakeOver = judge(fs, dir, path, found, me, timing);
        if (verdict.kind === "stale") verdict = takeOver({ fs, dir, path, tmp, text, me, staleMs }, found);
        if (verdict.kind === "taken") return DirLock.#held(path, text, refreshMs, warn, fs);
        if (verdict.kind === "live") throw new Error(verdict.reason);
      }
      throw new Error(`${dir}: could not take ${LOCK_FILE}: other servers keep starting on it`);
    } finally {
      removeIfThere(fs, tmp);
    }
  }

  /** The DirLock for a lock just made; the file goes again if that fails (it could not be refreshed). */
  static #held(path: string, text: string, refreshMs: number, warn: (line: string) => void, fs: LockFs): DirLock {
    try {
      return new DirLock(path, text, refreshMs, warn, fs);
    } catch (error) {
      removeIfThere(fs, path);
      throw error;
    }
  }

  /** Whether the lease is still being refreshed (until release(), or until the lock was lost). */
  get refreshing(): boolean {
    return this.#timer !== undefined;
  }

  /** Renews the lease now: the timer does it every refreshMs; a long synchronous task (a restore) calls refreshIfDue(). */
  refresh(): void {
    if (this.#timer === undefined) return;
    this.#lastRefresh = Date.now();
    try {
      // Only while the name is still our file: a lock someone replaced is theirs, and DIR is no longer safely ours.
      if (this.#fs.statSync(this.path).ino !== this.#ino) return this.#lose("replaced");
      const now = new Date();
      this.#fs.futimesSync(this.#fd, now, now);
    } catch (error) {
      // Anything else (EIO on a network file system): tried again next time.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") this.#lose("removed");
    }
  }

  refreshIfDue(): void {
    if (Date.now() - this.#lastRefresh >= this.#refreshMs) this.refresh();
  }

  /** Gives DIR up (close()): stops the lease, removes the lock if it is still ours. Never throws: a lock left behind goes stale. */
  release(): void {
    if (this.#timer === undefined) return; // released already, or lost: then the file is not ours
    this.#stop();
    try {
      const found = look(this.#fs, this.path);
      if (found?.ino === this.#ino && found.text === this.#text) this.#fs.unlinkSync(this.path);
    } catch {
      // Gone already, or not ours to remove.
    }
  }

  #stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#fs.closeSync(this.#fd);
  }

  #lose(how: string): void {
    this.#stop();
    this.#warn(`pollchat: data-dir: ${this.path} was ${how} by someone else: this server no longer holds its directory alone`);
  }
}

/** Live or stale, judged by pid at once where the pid means something here, else by the lease. */
function judge(fs: LockFs, dir: string, path: string, found: Look, me: LockHolder, t: Timing): Verdict {
  const other = parseHolder(found.text);
  if (other !== undefined && judgedByPid(other, me)) {
    if (!isAlive(other)) return STALE;
    const who = other.pid === process.pid && other.ns === me.ns ? "this process" : `pollchat pid ${other.pid}`;
    return { kind: "live", reason: `${dir} is in use by ${who} (${LOCK_FILE}): one server per directory` };
  }
  return watchLease(fs, dir, path, found, other, me, t);
}

/** Watches a lease (synchronously) until it is refreshed (live), lapses (stale), the file changes, or waitMs pass (live). */
function watchLease(fs: LockFs, dir: string, path: string, first: Look, other: LockHolder | undefined, me: LockHolder, t: Timing): Verdict {
  const sameClock = other?.boot !== undefined && other.boot === me.boot;
  const watchAtLeast = sameClock ? 0 : Math.ceil(t.refreshMs * 1.5);
  const pollMs = Math.max(5, Math.min(250, Math.floor(t.refreshMs / 4)));
  const who = other === undefined ? "a server whose lock is unreadable" : `pollchat pid ${other.pid}${other.host ? ` on ${other.host}` : ""}`;
  const where = `in another pid namespace or on another host (${LOCK_FILE})`;
  const since = Date.now();
  for (;;) {
    const seen = look(fs, path);
    if (seen === undefined || seen.ino !== first.ino || seen.text !== first.text) return CHANGED;
    if (seen.mtimeMs !== first.mtimeMs) {
      return { kind: "live", reason: `${dir} is in use by ${who} ${where}, its lease kept fresh: one server per directory` };
    }
    const now = Date.now();
    const waited = now - since;
    if (now - seen.mtimeMs >= t.staleMs && waited >= watchAtLeast) return STALE;
    if (waited >= t.waitMs) {
      const s = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
      return {
        kind: "live",
        reason: `${dir} is in use by ${who} ${where}: its lease did not lapse within ${s(t.waitMs)} (stale after ${s(t.staleMs)} unrefreshed): one server per directory`,
      };
    }
    Atomics.wait(sleeper, 0, 0, Math.min(pollMs, t.waitMs - waited));
  }
}
