import { MAX_SPANS, type Span } from "./unrecorded-time.js";

/** Presence shared in memory, as a Redis sorted set shares it between processes; unreachable while the log is down. */
export class MemoryPresence {
  readonly #seen = new Map<string, number>();
  #spans: Span[] = [];
  readonly #up: () => boolean;

  constructor(up: () => boolean = () => true) {
    this.#up = up;
  }

  #reach(): void {
    if (!this.#up()) throw new Error("the shared log is unreachable");
  }

  async mark(seen: readonly (readonly [string, number])[]): Promise<void> {
    this.#reach();
    for (const [key, at] of seen) this.#seen.set(key, Math.max(at, this.#seen.get(key) ?? 0));
  }

  async lastSeen(keys: readonly string[]): Promise<(number | undefined)[]> {
    this.#reach();
    return keys.map((key) => this.#seen.get(key));
  }

  async forget(before: number): Promise<void> {
    this.#reach();
    for (const [key, at] of this.#seen) if (at < before) this.#seen.delete(key);
    this.#spans = this.#spans.filter(([, to]) => to >= before);
  }

  async unrecorded(span: Span): Promise<void> {
    this.#reach();
    this.#spans.push(span);
    if (this.#spans.length > MAX_SPANS) this.#spans.shift();
  }

  async unrecordedSince(after: number): Promise<Span[]> {
    this.#reach();
    return this.#spans.filter(([, to]) => to > after);
  }
}
