import { rmdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { shortPath, systemReason } from "./data-dir.js";

/** A start that failed, in one line (the CLI prints it as `pollchat: <message>` and exits 1). */
export function startError(dir: string, error: unknown): Error {
  // A system error (ENOSPC, EROFS) says which file, not what for; the lock's refusal and prepareDataDir's name DIR already.
  if (typeof (error as NodeJS.ErrnoException).code === "string") {
    return new Error(`data-dir ${shortPath(dir)}: cannot start: ${systemReason(error as NodeJS.ErrnoException)}`);
  }
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
  return new Error(message.includes(shortPath(dir)) ? message : `data-dir ${shortPath(dir)}: cannot start: ${message}`);
}

/** Removes the directories mkdir made for a start that then failed (`made`: the first one it made), if still empty. */
export function removeMadeDirs(dir: string, made: string | undefined): void {
  if (made === undefined) return;
  const top = resolve(made);
  for (let path = resolve(dir); ; path = dirname(path)) {
    try {
      rmdirSync(path);
    } catch {
      return; // not empty, or not ours: it stays
    }
    if (path === top || dirname(path) === path) return;
  }
}
