import type { ConnectOptions, ReceiveTimings } from "./types.js";

const DEFAULT_TIMINGS: ReceiveTimings = {
  stream: true,
  firstEventMs: 5_000,
  // The server's heartbeat comes every 15 s.
  stallMs: 40_000,
  pollTimeoutMs: 25_000,
  streamRetryMs: 30_000,
  maxBackoffMs: 5_000,
};

/** The receive timings of connect()'s options (spec §11): each one not given is the default. */
export function receiveTimings(options: ConnectOptions): ReceiveTimings {
  const timings = { ...DEFAULT_TIMINGS };
  for (const key of Object.keys(timings) as (keyof ReceiveTimings)[]) {
    if (options[key] !== undefined) Object.assign(timings, { [key]: options[key] });
  }
  return timings;
}
