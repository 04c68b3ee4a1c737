import { createHash } from "node:crypto";
import { create, LOCK_FILE, look, removeIfThere, sameLook, touch, type LockFs, type Look } from "./lock-files.js";
import { isAlive, judgedByPid, parseHolder, type LockHolder } from "./lock-holder.js";

/** Claims one starter may find abandoned (their makers died midway) before it gives up. */
const MAX_CLAIMS = 8;

export type TakeOver = { kind: "taken" } | { kind: "changed" } | { kind: "live"; reason: string };

const TAKEN: TakeOver = { kind: "taken" };
const CHANGED: TakeOver = { kind: "changed" };

/** What a take-over needs of its starter. */
export interface Taker {
  fs: LockFs;
  dir: string;
  /** DIR/pollchat.lock. */
  path: string;
  /** Our whole lease file, to become the lock. */
  tmp: string;
  text: string;
  me: LockHolder;
  staleMs: number;
}

/**
 * Replaces a lock judged stale with ours, atomically among starters: of any
 * number that judged the same lock stale, one replaces it, never two.
 *
 * The stale lock is first claimed: a hard link of our lease file to
 * `pollchat.lock.take-<key>-<n>`, the key naming that very lock (its inode and
 * bytes), which fails (EEXIST) for every other starter. The one who made the
 * claim looks once more (still the lock it judged, not refreshed since?) and
 * renames its lease over it in one step; the lock's name is never empty meanwhile,
 * so no one can make a fresh lock in between. Whoever finds the claim made
 * refuses while its maker lives; a claim whose maker died midway (by its
 * pid, or unrefreshed for staleMs) is passed over for the next n. The claims
 * go once the lock is replaced: a starter that claims the key of a lock
 * replaced already finds the lock changed and judges it again.
 */
export function takeOver(t: Taker, stale: Look): TakeOver {
  const key = createHash("sha256").update(`${stale.ino}\n${stale.text}`).digest("hex").slice(0, 16);
  const claim = (n: number): string => `${t.path}.take-${key}-${n}`;
  // A claim is our lease file linked: dated now, not when it was written (before a lease was waited out, up to
  // waitMs ago), or a starter elsewhere would take it for one abandoned.
  touch(t.fs, t.tmp);
  for (let n = 0; n < MAX_CLAIMS; n++) {
    if (create(t.fs, claim(n), t.tmp, t.text)) return replace(t, stale, claim, n);
    const found = look(t.fs, claim(n));
    // Its maker finished (the lock was replaced) or gave up: the lock is judged again.
    if (found === undefined) return CHANGED;
    const maker = parseHolder(found.text);
    if (!abandoned(found, maker, t)) {
      const ours = maker !== undefined && maker.pid === process.pid && maker.ns === t.me.ns;
      const who = maker === undefined ? "a server" : ours ? "this process" : `pollchat pid ${maker.pid}`;
      return { kind: "live", reason: `${t.dir} is in use by ${who} (taking over a stale ${LOCK_FILE}): one server per directory` };
    }
  }
  throw new Error(
    `${t.dir}: ${MAX_CLAIMS} take-overs of a stale ${LOCK_FILE} were abandoned midway: remove ${t.path}.take-* and start again`,
  );
}

/** With claim n made: our lease replaces the lock, if it is still the one judged stale. */
function replace(t: Taker, stale: Look, claim: (n: number) => string, n: number): TakeOver {
  try {
    // Refreshed since (its holder lives after all), released, or replaced: judged again.
    if (!sameLook(look(t.fs, t.path), stale)) {
      removeIfThere(t.fs, claim(n));
      return CHANGED;
    }
    t.fs.renameSync(t.tmp, t.path);
  } catch (error) {
    removeIfThere(t.fs, claim(n));
    throw error;
  }
  // Ours and the abandoned ones before it: no longer needed, the lock they claimed is gone.
  for (let i = n; i >= 0; i--) removeIfThere(t.fs, claim(i));
  return TAKEN;
}

/** A claim whose maker is gone: judged as a lock is, by pid where it means something here, else by age. */
function abandoned(found: Look, maker: LockHolder | undefined, t: Taker): boolean {
  if (maker !== undefined && judgedByPid(maker, t.me)) return !isAlive(maker);
  // A take-over lasts a few file-system calls: one unchanged for staleMs was left midway.
  return Date.now() - found.mtimeMs >= t.staleMs;
}
