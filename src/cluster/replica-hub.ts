import { Hub, type HubOptions } from "../hub.js";
import { RecordClock } from "./record-clock.js";

/**
 * A hub every replica makes alike: its clock says each entry's time while it is
 * applied, it expires no session on its own (the cluster's presence does, by an
 * entry), and its ids start where the snapshot it came from left them, not at
 * this process's clock: the same entries give the same ids on every replica.
 */
export function replicaHub(options: HubOptions, start: { lastId: number; at: number }): { hub: Hub; clock: RecordClock } {
  const clock = new RecordClock();
  clock.at = start.at;
  const hub = new Hub(options, { now: clock.now, lastId: start.lastId, sweep: false });
  clock.at = undefined;
  return { hub, clock };
}
