/** Bytes per chunk of a snapshot: no one string or Buffer grows with the state. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Log lines packed into Buffers of at most CHUNK_BYTES each (a line longer
 * than that is a chunk of its own), as they are produced: a snapshot of any
 * size never becomes one string, which past V8's limit (~512 MiB) cannot exist.
 */
export class LineChunks {
  readonly chunks: Buffer[] = [];
  /** Bytes in all chunks. */
  bytes = 0;
  readonly #limit: number;
  #parts: string[] = [];
  #partBytes = 0;

  constructor(limit = CHUNK_BYTES) {
    this.#limit = limit;
  }

  push(line: string): void {
    const size = Buffer.byteLength(line) + 1;
    if (this.#partBytes + size > this.#limit) this.#flush();
    this.#parts.push(line);
    this.#partBytes += size;
  }

  /** The chunks, every line pushed ended by "\n". */
  end(): Buffer[] {
    this.#flush();
    return this.chunks;
  }

  #flush(): void {
    if (this.#parts.length === 0) return;
    const chunk = Buffer.from(this.#parts.join("\n") + "\n");
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.#parts = [];
    this.#partBytes = 0;
  }
}
