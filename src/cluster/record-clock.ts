/**
 * The hub's clock with --redis: while a log entry is applied it says the time
 * the entry carries (the store's clock when it was appended), so rate limits,
 * idempotency windows and ids come out the same on every replica; otherwise
 * this process's own clock (presence, for instance, is this process's to tell).
 */
export class RecordClock {
  /** The time of the entry being applied, in ms; undefined between entries. */
  at: number | undefined;

  readonly now = (): number => this.at ?? Date.now();
}
