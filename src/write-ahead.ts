import type { Client } from "./client.js";
import type { Envelope } from "./message.js";
import type { Room } from "./room.js";

/**
 * What the hub asks of a store that writes ahead (--data-dir,
 * store/message-log.ts): a message reaches no queue, no room history and no
 * waiting poll before its record is durable, so a post that fails (5xx) was
 * delivered to no one and its retry cannot double it (spec §8).
 */
export interface WriteAhead {
  /** Throws ChatError store_unavailable (503) when records cannot be written now: called before anything changes. */
  checkWritable(): void;
  /**
   * Takes a message's delivery: run once the batch holding its record is
   * durable, in the order taken (id order); never if that write fails, and then
   * none taken after it either. The hub's cursors rely on that order: no id at
   * or below the last delivery run is still on its way.
   */
  hold(delivery: HeldDelivery): void;
}

/** A message accepted and not yet delivered; a snapshot taken meanwhile counts it as delivered. */
export interface HeldDelivery {
  readonly envelope: Envelope;
  /** Who gets it, as they were when it was posted. */
  readonly recipients: readonly Client[];
  /** The room whose history takes it (none for private messages and command answers). */
  readonly room: Room | undefined;
  /** Puts it into the room's history and every recipient's queue, and wakes them. */
  run(): void;
}
