import type { Client } from "./client.js";
import type { Envelope } from "./message.js";

/** A room: its members and the newest messages of its history (private messages never enter it). */
export class Room {
  readonly name: string;
  readonly members = new Set<Client>();
  readonly #history: Envelope[] = [];
  readonly #historyLimit: number;

  constructor(name: string, historyLimit: number) {
    this.name = name;
    this.#historyLimit = historyLimit;
  }

  remember(envelope: Envelope): void {
    if (this.#historyLimit === 0) return;
    this.#history.push(envelope);
    if (this.#history.length > this.#historyLimit) this.#history.shift();
  }

  /** Up to `limit` messages with ids below `before`, newest last. */
  history(before: number, limit: number): Envelope[] {
    let end = this.#history.length;
    while (end > 0 && this.#history[end - 1]!.id >= before) end--;
    return this.#history.slice(Math.max(0, end - limit), end);
  }

  memberNames(): string[] {
    return [...this.members].map((c) => c.name).sort((a, b) => a.localeCompare(b));
  }
}
