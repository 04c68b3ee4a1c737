/** Listeners by event name, typed by an events map such as ChatEvents. */
export class Emitter<Events extends { [E in keyof Events]: (...args: never[]) => void }> {
  readonly #listeners = new Map<keyof Events, Set<unknown>>();

  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.#listeners.get(event)?.delete(listener);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (...a: Parameters<Events[E]>) => void)(...args);
      } catch (error) {
        // A failing listener must not stop the chat: it is reported as an uncaught error instead.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
