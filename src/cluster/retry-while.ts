/**
 * Runs `task` until it resolves, waiting 100 ms after the first failure and twice
 * as long after each next one, up to 2 s, for as long as `wanted()` says so:
 * undefined once it does not. For what the store must be asked again when it is back.
 */
export async function retryWhile<T>(task: () => Promise<T>, wanted: () => boolean): Promise<T | undefined> {
  for (let wait = 100; wanted(); wait = Math.min(wait * 2, 2000)) {
    try {
      return await task();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
    }
  }
  return undefined;
}
