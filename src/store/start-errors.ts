import { rmdirSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** A start that failed, in one line (the CLI prints it as `pollchat: <message>` and exits 1). */
export function startError(dir: string, error: unknown): Error {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
  // The lock's refusal names DIR already; a system error (ENOSPC, EACCES) says which file, not what for.
  return new Error(message.includes(dir) ? message : `data-dir ${dir}: cannot start: ${message}`);
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
