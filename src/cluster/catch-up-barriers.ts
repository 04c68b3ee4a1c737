import { compareIds } from "./shared-log.js";

/** A request waiting until this replica has applied the log up to `tip`. */
interface Barrier {
  readonly tip: string;
  done(): void;
  fail(error: Error): void;
}

/**
 * The requests waiting for a replica to catch up (replica.ts catchUp): each is
 * let through once the position applied reaches the tip it waits for, or fails
 * at its deadline or when the replica starts over in a new epoch.
 */
export class CatchUpBarriers {
  #waiting: Barrier[] = [];

  /** Resolves once release() passes `tip`; rejects with `timedOut()` after timeoutMs, or with failAll's error. */
  wait(tip: string, timeoutMs: number, timedOut: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = this.#waiting.filter((b) => b !== barrier);
        reject(timedOut());
      }, timeoutMs).unref();
      const barrier: Barrier = {
        tip,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiting.push(barrier);
    });
  }

  /** The replica has applied up to `position`: those waiting for it go on. */
  release(position: string): void {
    if (this.#waiting.length === 0) return;
    const still: Barrier[] = [];
    for (const barrier of this.#waiting) {
      if (compareIds(position, barrier.tip) >= 0) barrier.done();
      else still.push(barrier);
    }
    this.#waiting = still;
  }

  failAll(error: () => Error): void {
    const all = this.#waiting;
    this.#waiting = [];
    for (const barrier of all) barrier.fail(error());
  }
}
