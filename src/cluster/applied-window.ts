import { compareIds, START } from "./shared-log.js";

/** Positions remembered: a mark older than these is checked against the log itself (one Redis round trip). */
const KEPT = 8192;

/**
 * The positions this replica applied lately, read in order without a break since `floor`:
 * a signed mark (token-marks.ts) of a position inside that span that is not among them names an
 * entry the log no longer has (it lost its end and went on: README, Several processes: Faults).
 * Known here without asking Redis, so a poll presenting a mark costs no round trip in the usual case.
 */
export class AppliedWindow {
  #floor = START;
  readonly #ring: string[] = [];
  readonly #kept = new Set<string>();

  /** Reading starts (again) after `position`: nothing before it was seen here. */
  reset(position: string): void {
    this.#floor = position;
    this.#ring.length = 0;
    this.#kept.clear();
  }

  applied(position: string): void {
    this.#ring.push(position);
    this.#kept.add(position);
    if (this.#ring.length > KEPT) {
      this.#floor = this.#ring.shift()!;
      this.#kept.delete(this.#floor);
    }
  }

  /** "seen": applied here; "missing": inside the span read here, not in the log; "unknown": at or before the span. */
  judge(position: string): "seen" | "missing" | "unknown" {
    if (this.#kept.has(position)) return "seen";
    return compareIds(position, this.#floor) > 0 ? "missing" : "unknown";
  }
}
