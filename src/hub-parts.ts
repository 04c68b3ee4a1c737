import type { Session } from "./session.js";
import type { HubOptions } from "./hub-types.js";
import type { SessionRecord } from "./journal.js";
import type { ChatMessage, Envelope } from "./message.js";
import type { TokenBucket } from "./rate-limiter.js";
import type { Room } from "./room.js";
import type { Rooms } from "./rooms.js";
import type { Sessions } from "./sessions.js";
import type { TxnKeys } from "./txn-keys.js";

/**
 * What the hub's parts (membership.ts, posting.ts, restore.ts) share of it:
 * its tables, and the two ways a change enters the journal ahead of being applied.
 * The hub makes one, once; the parts hold it.
 */
export interface HubParts {
  readonly options: HubOptions;
  readonly now: () => number;
  readonly sessions: Sessions;
  readonly rooms: Rooms;
  /** Idempotency keys of posts, by name: they outlive sessions (spec §5). */
  readonly txns: TxnKeys;
  /** Makes a session's rate bucket: --rate per second, bursts of `burst`. */
  readonly newBucket: (burst?: number) => TokenBucket;
  /** Throws when the journal cannot write: nothing is accepted that could not be made durable. */
  checkWritable(): void;
  /** Assigns the next id and journals a message to `recipients` (hub.ts #publish). */
  publish(fields: Omit<ChatMessage, "id" | "ts">, recipients: Iterable<Session>, room?: Room, keys?: readonly string[]): Envelope;
  /** Tells observers and journals a session's change (hub.ts #record). */
  record(record: SessionRecord): void;
}
