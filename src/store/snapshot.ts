import type { Hub } from "../hub.js";
import type { Envelope } from "../message.js";
import { envelopeLine, headLine, historyLine, sessionLine, txnLine } from "./records.js";

/**
 * The hub's state now, as log lines: what a compacted file starts with.
 * Kept: each room's history (--history per room, rooms with members and the
 * empty ones the store keeps), every message a session's queue still holds,
 * each session with its rooms and queue, idempotency keys in their window.
 * Built synchronously, so it is one consistent moment of the hub.
 */
export function snapshotLines(hub: Hub, kept: Iterable<readonly Envelope[]>, now: number): string[] {
  const lines = [headLine(hub.lastId)];
  const written = new Set<number>();
  const writeHistory = (envelopes: readonly Envelope[]): void => {
    for (const envelope of envelopes) {
      lines.push(historyLine(envelope));
      written.add(envelope.id);
    }
  };
  for (const { name } of hub.rooms()) writeHistory(hub.room(name)?.history(Number.MAX_SAFE_INTEGER, Infinity) ?? []);
  for (const envelopes of kept) writeHistory(envelopes);
  for (const client of hub.clients()) {
    if (!client.resumable) continue;
    for (const envelope of client.queue.peek()) {
      // A gap is written inline in its session: its id is that of a real message.
      if (envelope.message.type === "gap" || written.has(envelope.id)) continue;
      lines.push(envelopeLine(envelope));
      written.add(envelope.id);
    }
    lines.push(sessionLine(client));
    for (const [txn, id, at] of client.txns(now)) lines.push(txnLine(client.key, txn, id, at));
  }
  return lines;
}
