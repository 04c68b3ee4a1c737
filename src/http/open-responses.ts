/**
 * Answers still open (held polls, SSE streams), each with the function that
 * finishes it, so shutdown can answer every one instead of cutting it.
 */
export class OpenResponses {
  readonly #finishers = new Set<() => void>();

  get size(): number {
    return this.#finishers.size;
  }

  add(finish: () => void): void {
    this.#finishers.add(finish);
  }

  delete(finish: () => void): void {
    this.#finishers.delete(finish);
  }

  finishAll(): void {
    for (const finish of [...this.#finishers]) finish();
  }
}
