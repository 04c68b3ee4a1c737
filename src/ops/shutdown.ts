/**
 * What must happen when the server closes: transports that hold clients open
 * (SSE streams, TCP connections, and whatever an embedding program adds)
 * register a hook here and end each client with the reason given, so close()
 * can await them all.
 */
export type CloseHook = (reason: string) => void | Promise<void>;

export class Shutdown {
  readonly #hooks = new Set<CloseHook>();
  #closing = false;

  /** True once close() began: new requests are refused with 503 shutting_down. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Registers a hook; returns a function that removes it (a transport that stopped on its own). */
  onClose(hook: CloseHook): () => void {
    this.#hooks.add(hook);
    return () => this.#hooks.delete(hook);
  }

  /** Runs every hook once; resolves when all have finished with what failed (a failing hook does not stop the others). */
  async run(reason: string): Promise<unknown[]> {
    this.#closing = true;
    const hooks = [...this.#hooks];
    this.#hooks.clear();
    const results = await Promise.allSettled(hooks.map(async (hook) => hook(reason)));
    return results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  }
}
