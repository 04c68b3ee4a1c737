// Retry pacing shared by the poll loop and the send queue.

const FIRST_MS = 250;
const MAX_MS = 5000;

/** Exponential with jitter: 250 ms, 500 ms, 1 s … up to 5 s, so a restarted server is not hit by every page at once. */
export function backoffMs(attempt, retryAfterMs) {
  const base = Math.min(MAX_MS, FIRST_MS * 2 ** Math.max(0, attempt - 1));
  const jittered = base / 2 + Math.random() * (base / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}

/**
 * Waits `ms`, or less when woken (the browser came back online, the user asked to retry).
 * Returns a promise and a wake function.
 */
export function wakeableDelay(ms) {
  let wake = () => {};
  const promise = new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { promise, wake };
}
