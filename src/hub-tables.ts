import type { CommandHub } from "./commands/run-command.js";
import { Cursors } from "./cursors.js";
import { HistoryBudget } from "./history-budget.js";
import type { HubParts } from "./hub-parts.js";
import type { HubOptions } from "./hub-types.js";
import type { SessionRecord } from "./journal.js";
import type { Session } from "./session.js";
import { Membership } from "./membership.js";
import { Posting } from "./posting.js";
import { Presence } from "./presence.js";
import { QueueBudget } from "./queue-budget.js";
import { Rooms } from "./rooms.js";
import { SessionFactory } from "./session-factory.js";
import { Sessions } from "./sessions.js";
import { TxnKeys } from "./txn-keys.js";

/** Everything a hub holds of the chat, and the parts that work on it. */
export interface HubTables {
  readonly sessions: Sessions;
  /** The bytes all session queues hold, with a share per address (queue-budget.ts). */
  readonly queues: QueueBudget;
  readonly presence: Presence;
  readonly rooms: Rooms;
  /** Idempotency keys of posts, by name: they outlive sessions (spec §5). */
  readonly txns: TxnKeys;
  /** What membership, posting and restore share of the hub (hub-parts.ts). */
  readonly parts: HubParts;
  readonly membership: Membership;
  readonly posting: Posting;
  readonly factory: SessionFactory;
  /** The newest id delivered to queues, and acknowledgements clamped to it (cursors.ts). */
  readonly cursors: Cursors;
}

/** What the tables need of their hub: its journal, its ids, its sweep and commands. */
export interface HubHooks extends Pick<HubParts, "newBucket" | "checkWritable" | "publish" | "record"> {
  readonly nextId: (now: number) => number;
  /** The presence sweep, on a timer; undefined: none (--redis: cluster/shared-presence.ts decides expiry). */
  readonly sweep: (() => void) | undefined;
  readonly commands: CommandHub;
  /** A session's queue lost messages to the budget of all queues (observers hear it as queue_full). */
  readonly dropped: (client: Session, count: number) => void;
}

/**
 * A hub's tables, empty, delivered up to `deliveredUpTo`: made when the hub is, and
 * again when a replica starts over in a new epoch (--redis: hub.startOver).
 */
export function emptyTables(options: HubOptions, now: () => number, deliveredUpTo: number, hooks: HubHooks): HubTables {
  // What a store restores is in queues already.
  const cursors = new Cursors(deliveredUpTo, (record: SessionRecord) => hooks.record(record));
  // A slot frees when a session expires: that is how long a refused client should wait.
  const retryAfterSeconds = Math.ceil(options.sessionTtlMs / 1000);
  const rooms = new Rooms({ ...options, historyBudget: new HistoryBudget(options.maxHistoryBytes), retryAfterSeconds });
  const queues = new QueueBudget({ maxBytes: options.maxQueuedBytes, maxPerAddress: options.maxQueuedBytesPerIp });
  queues.onDrop = (queue) => {
    if (queue.holder !== undefined) hooks.dropped(queue.holder, 1);
  };
  const { maxSessions, maxSessionsPerIp, ratePerIp } = options;
  const sessions = new Sessions({ maxSessions, maxSessionsPerIp, retryAfterSeconds, ratePerIp, now, queues });
  const presence = new Presence({ sessionTtlMs: options.sessionTtlMs, now, sweep: hooks.sweep });
  const txns = new TxnKeys({ max: options.maxTxnKeys, perAddress: options.maxTxnKeysPerIp });
  const parts: HubParts = {
    options,
    now,
    sessions,
    rooms,
    txns,
    newBucket: hooks.newBucket,
    checkWritable: hooks.checkWritable,
    publish: hooks.publish,
    record: hooks.record,
  };
  const membership = new Membership(parts);
  const factory = new SessionFactory(parts, membership, hooks.nextId);
  const createSession = factory.create.bind(factory);
  const posting = new Posting(parts, { membership, presence, commands: hooks.commands, createSession });
  return { sessions, queues, presence, rooms, txns, parts, membership, posting, factory, cursors };
}
