const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Splits a byte stream into lines: LF or CRLF, across packets. A line that
 * is not UTF-8 or grows past maxBytes is dropped with an error, and the
 * reader carries on with the next line.
 */
export class LineReader {
  readonly #maxBytes: number;
  readonly #onLine: (line: string) => void;
  readonly #onError: (problem: string) => void;
  #parts: Buffer[] = [];
  #size = 0;
  #discarding = false;

  constructor(maxBytes: number, onLine: (line: string) => void, onError: (problem: string) => void) {
    this.#maxBytes = maxBytes;
    this.#onLine = onLine;
    this.#onError = onError;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#take(chunk.subarray(start, nl));
      this.#endLine();
      start = nl + 1;
    }
    if (start < chunk.length) this.#take(chunk.subarray(start));
  }

  #take(bytes: Buffer): void {
    if (this.#discarding || bytes.length === 0) return;
    this.#size += bytes.length;
    if (this.#size > this.#maxBytes) {
      this.#discarding = true;
      this.#parts = [];
      return;
    }
    this.#parts.push(bytes);
  }

  #endLine(): void {
    if (this.#discarding) {
      this.#discarding = false;
      this.#size = 0;
      this.#onError("message_too_long: that line was too long and was dropped");
      return;
    }
    let bytes = Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, -1);
    let line: string;
    try {
      line = utf8.decode(bytes);
    } catch {
      this.#onError("bad_encoding: that line was not UTF-8 and was dropped");
      return;
    }
    this.#onLine(line);
  }
}
