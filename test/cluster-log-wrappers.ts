import type { SharedLog } from "../src/cluster/shared-log.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client of a shared log that does what `inner` does, but whose reads come
 * back `readDelayMs` late (the store has an entry well before this replica
 * applies it) and whose tip reads take `tipDelayMs` (a round trip to a busy
 * store) and are counted.
 */
export function slowLog(inner: SharedLog, opts: { readDelayMs?: number; tipDelayMs?: number }): SharedLog & { tips: number } {
  const log = {
    tips: 0,
    get connected() {
      return inner.connected;
    },
    get snapshots() {
      return inner.snapshots;
    },
    get presence() {
      return inner.presence;
    },
    append: (records: readonly string[], deadline: number) => inner.append(records, deadline),
    deadline: (windowMs: number) => inner.deadline(windowMs),
    passed: (deadline: number) => inner.passed(deadline),
    read: async (after: string, count: number, blockMs: number) => {
      const entries = await inner.read(after, count, blockMs);
      if (opts.readDelayMs !== undefined && entries.length > 0) await sleep(opts.readDelayMs);
      return entries;
    },
    tip: async () => {
      log.tips++;
      if (opts.tipDelayMs !== undefined) await sleep(opts.tipDelayMs);
      return inner.tip();
    },
    agree: (name: string, value: string) => inner.agree(name, value),
    close: () => inner.close(),
  };
  return log;
}
