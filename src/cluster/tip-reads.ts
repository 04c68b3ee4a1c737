/**
 * Reads of the shared log's tip, shared (replica.ts catchUp): every poll or
 * post that presents a token this process does not know asks where the log
 * ends, and a flood of them would cost the store one read each. A caller gets
 * the answer of a read sent after it came (one sent before may miss what it
 * presents); so one that comes while a read is under way waits for the next,
 * sent once that one is answered, and every caller until then shares it.
 */
export class TipReads {
  readonly #read: () => Promise<string>;
  /** The read under way, settled (never rejecting) once it is answered. */
  #asked: Promise<void> | undefined;
  /** The read to send once #asked is answered. */
  #next: Promise<string> | undefined;

  constructor(read: () => Promise<string>) {
    this.#read = read;
  }

  /** The newest entry's id, as a read sent after this call found it. */
  tip(): Promise<string> {
    if (this.#next !== undefined) return this.#next;
    if (this.#asked === undefined) return this.#send();
    const next = this.#asked.then(() => {
      this.#next = undefined;
      return this.#send();
    });
    this.#next = next;
    return next;
  }

  #send(): Promise<string> {
    const read = this.#read();
    const answered = read.then(ignore, ignore);
    this.#asked = answered;
    // Runs before a next read waiting on `answered` (registered first), so that one is sent anew.
    void answered.then(() => {
      if (this.#asked === answered) this.#asked = undefined;
    });
    return read;
  }
}

const ignore = (): void => {};
