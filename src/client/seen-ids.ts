import type { ChatMessage } from "./types.js";

/** Ids remembered for dedupe; older ones are below the cursor and never sent again. */
const SEEN_IDS = 2048;

/** The messages a chat was given, by id (a gap keyed apart), the newest SEEN_IDS: one given again is dropped. */
export class SeenIds {
  readonly #seen = new Set<string | number>();

  /** Whether this message is new: true once, and remembered from then on. */
  first(message: ChatMessage): boolean {
    const key = message.type === "gap" ? `gap:${message.id}` : message.id;
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > SEEN_IDS) this.#seen.delete(this.#seen.values().next().value!);
    return true;
  }
}
