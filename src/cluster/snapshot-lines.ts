import type { Hub } from "../hub.js";
import type { HubOptions } from "../hub-types.js";
import type { Room } from "../room.js";
import { LineChunks } from "../store/line-chunks.js";
import { envelopeLine, headLine, historyLine, sessionLine, txnLine } from "../store/records.js";
import { replay } from "../store/replay.js";
import type { Replica } from "./replica.js";
import type { RecordClock } from "./record-clock.js";

/**
 * A replica's state at one position of the shared log, as the lines of the
 * file log's snapshot (store/records.ts: head, hist, env, sess, txn), plus what
 * a replica needs that one process does not: the position and time it stands
 * at (`cluster`), and per session (`cx`) where it was made, its
 * rate buckets, and whether it lives with one connection (TCP sessions are
 * kept too: they are shared). A process that starts loads the newest one and
 * reads the log after its position: it never reads the world's history.
 */
interface ClusterHead {
  k: "cluster";
  v: 1;
  pos: string;
  at: number;
}

interface SessionExtra {
  k: "cx";
  n: string;
  m: string;
  a?: string;
  tcp?: 1;
  b?: [number, number];
  j?: [number, number];
}

/** The post bucket of an address that created sessions (--rate-per-ip), as [tokens, at]. */
interface AddressExtra {
  k: "ax";
  a: string;
  b: [number, number];
}

const ALL = Number.MAX_SAFE_INTEGER;

/** The hub now, at the replica's position, as chunks of lines; synchronous: one moment between two entries. */
export function snapshotChunks(hub: Hub, replica: Replica, at: number): { pos: string; chunks: Buffer[] } {
  const lines = new LineChunks();
  const pos = replica.position;
  lines.push(JSON.stringify({ k: "cluster", v: 1, pos, at } satisfies ClusterHead));
  lines.push(headLine(hub.lastId));
  const written = new Set<number>();
  const writeHistory = (room: Room): void => {
    for (const envelope of room.history(ALL, Infinity)) {
      lines.push(historyLine(envelope));
      written.add(envelope.id);
    }
  };
  for (const { name } of hub.rooms()) writeHistory(hub.room(name)!);
  for (const room of hub.keptRooms()) writeHistory(room);
  for (const client of hub.sessions()) {
    const queue = client.queue.peek();
    for (const envelope of queue) {
      if (envelope.message.type === "gap" || written.has(envelope.id)) continue;
      lines.push(envelopeLine(envelope));
      written.add(envelope.id);
    }
    lines.push(sessionLine(client, queue));
    const { post, join } = client.bucketStates;
    // Its address and proof are on its sess line (a snapshot of an older version has the address here, `a`).
    const extra: SessionExtra = { k: "cx", n: client.key, m: replica.madeAt(client) };
    if (!client.resumable) extra.tcp = 1;
    if (post) extra.b = post;
    if (join) extra.j = join;
    lines.push(JSON.stringify(extra));
  }
  // The post buckets of creating addresses (--rate-per-ip): a replica started from here refuses as the others do.
  for (const [a, b] of hub.addressBuckets()) lines.push(JSON.stringify({ k: "ax", a, b } satisfies AddressExtra));
  for (const [key, txn, id, at2, address] of hub.txnKeys(at)) lines.push(txnLine(key, txn, id, at2, address));
  return { pos, chunks: lines.end() };
}

/**
 * Puts a snapshot's state into a replica's hub, made empty (replica-hub.ts),
 * at the snapshot's time; returns the position to read the log after.
 */
export function restoreSnapshot(hub: Hub, clock: RecordClock, replica: Replica, options: HubOptions, chunks: readonly Buffer[]): string {
  let head: ClusterHead | undefined;
  const extras = new Map<string, SessionExtra>();
  const addresses: AddressExtra[] = [];
  const result = replay(
    (line) => {
      for (const chunk of chunks) eachLine(chunk, line);
    },
    {
      maxQueue: options.maxQueue,
      maxQueueBytes: options.maxQueueBytes,
      maxQueuedBytes: options.maxQueuedBytes,
      history: options.history,
      maxHistoryBytes: options.maxHistoryBytes,
      now: () => head?.at ?? 0,
      setAside: (bytes) => {
        const value = parseExtra(bytes);
        if (value?.k === "cluster") head = value;
        else if (value?.k === "cx") extras.set(value.n, value);
        else if (value?.k === "ax" && isAddressExtra(value)) addresses.push(value);
      },
    },
  );
  if (head === undefined) throw new Error("redis: the snapshot has no head line");
  const sessions = result.sessions.map((s) => {
    const extra = extras.get(s.name.toLowerCase());
    return { ...s, address: s.address ?? extra?.a, resumable: extra?.tcp !== 1 };
  });
  clock.at = head.at;
  try {
    hub.restore(sessions, result.history, result.txns, result.lastId);
    for (const { a, b } of addresses) hub.restoreAddressBucket(a, b);
  } finally {
    clock.at = undefined;
  }
  for (const [key, extra] of extras) {
    const client = hub.session(key);
    if (!client) continue;
    client.bucketStates = { ...(extra.b && { post: extra.b }), ...(extra.j && { join: extra.j }) };
    replica.setMadeAt(client, extra.m);
  }
  return head.pos;
}

/** A snapshot is written by pollchat processes only, yet a bucket read back must be two numbers. */
function isAddressExtra(value: AddressExtra): boolean {
  const b: unknown = value.b;
  return typeof value.a === "string" && Array.isArray(b) && b.length === 2 && b.every((n) => typeof n === "number" && Number.isFinite(n));
}

function parseExtra(bytes: Buffer): ClusterHead | SessionExtra | AddressExtra | undefined {
  try {
    return JSON.parse(bytes.toString("utf8")) as ClusterHead | SessionExtra | AddressExtra;
  } catch {
    return undefined;
  }
}

function eachLine(data: Buffer, line: (bytes: Buffer) => void): void {
  for (let start = 0; start < data.length; ) {
    let end = data.indexOf(0x0a, start);
    if (end === -1) end = data.length;
    line(data.subarray(start, end));
    start = end + 1;
  }
}
