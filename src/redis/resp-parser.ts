import { RedisReplyError, RespProtocolError } from "./redis-errors.js";
import { DEFAULT_RESP_LIMITS, type RespLimits } from "./resp-limits.js";
import type { RespReply } from "./resp-reply.js";

const CR = 13;
const LF = 10;
const PLUS = 43; // +
const MINUS = 45; // -
const COLON = 58; // :
const DOLLAR = 36; // $
const STAR = 42; // *
const EMPTY = Buffer.alloc(0);

/** An array whose elements are still arriving. */
interface Frame {
  items: RespReply[];
  length: number;
}

/** A bulk string longer than what has arrived: its pieces, joined once complete. */
interface PartialBulk {
  parts: Buffer[];
  have: number;
  /** Payload bytes; the CRLF after it is awaited too. */
  length: number;
}

/**
 * Incremental RESP2 reply parser: bytes in as they arrive, split anywhere,
 * complete replies out in order. It keeps one buffer, never more than one
 * partial line of it (a bulk string that is still arriving is kept as its
 * pieces, joined once), and arrays that are still arriving on a stack, so
 * nothing is parsed twice and no wait is quadratic.
 *
 * Anything that is not RESP2, or is past a cap of RespLimits, throws a
 * RespProtocolError, and every later push throws it again: the stream cannot
 * be resynchronised, so the connection is to be closed.
 */
export class RespParser {
  readonly #limits: RespLimits;
  #buf: Buffer = EMPTY;
  #pos = 0;
  readonly #stack: Frame[] = [];
  #bulk: PartialBulk | undefined;
  /** Of the reply being parsed: bytes so far and array elements announced. */
  #replyBytes = 0;
  #elements = 0;
  #failed: RespProtocolError | undefined;

  constructor(limits: Partial<RespLimits> = {}) {
    this.#limits = { ...DEFAULT_RESP_LIMITS, ...limits };
  }

  /** Bytes held for a reply that is not complete yet. */
  get buffered(): number {
    return this.#buf.length - this.#pos + (this.#bulk?.have ?? 0);
  }

  /** Parses `chunk`, calling `onReply` with each reply it completes, in order. */
  push(chunk: Buffer, onReply: (reply: RespReply) => void): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk, onReply);
    } catch (error) {
      if (error instanceof RespProtocolError) {
        // Nothing after this is read: let go of what was held for it.
        this.#failed = error;
        this.#buf = EMPTY;
        this.#pos = 0;
        this.#bulk = undefined;
        this.#stack.length = 0;
      }
      throw error;
    }
  }

  #push(chunk: Buffer, onReply: (reply: RespReply) => void): void {
    if (this.#bulk) {
      const rest = this.#continueBulk(this.#bulk, chunk, onReply);
      if (rest === undefined || rest.length === 0) return;
      chunk = rest;
    }
    // Only a partial line is ever left over, so this copy is bounded by maxLineBytes.
    this.#buf = this.#pos < this.#buf.length ? Buffer.concat([this.#buf.subarray(this.#pos), chunk]) : chunk;
    this.#pos = 0;
    while (this.#pos < this.#buf.length && this.#bulk === undefined && this.#step(onReply));
    if (this.#pos >= this.#buf.length) {
      this.#buf = EMPTY; // lets the socket's chunk go
      this.#pos = 0;
    } else if (this.#buf.length - this.#pos > this.#limits.maxLineBytes) {
      throw new RespProtocolError(`a reply line longer than ${this.#limits.maxLineBytes} bytes`);
    }
  }

  /** Parses one line (and a bulk string after it); false when the line is not complete yet. */
  #step(onReply: (reply: RespReply) => void): boolean {
    const buf = this.#buf;
    const start = this.#pos;
    const type = buf[start]!;
    if (type !== PLUS && type !== MINUS && type !== COLON && type !== DOLLAR && type !== STAR) {
      throw new RespProtocolError(`not a RESP2 reply: type byte 0x${type.toString(16).padStart(2, "0")}`);
    }
    const lf = buf.indexOf(LF, start);
    if (lf === -1) return false;
    if (lf - start > this.#limits.maxLineBytes) throw new RespProtocolError(`a reply line longer than ${this.#limits.maxLineBytes} bytes`);
    const end = lf - 1;
    if (buf[end] !== CR || end === start) throw new RespProtocolError("a reply line not ended by CRLF");
    this.#charge(lf + 1 - start);
    this.#pos = lf + 1;
    switch (type) {
      case PLUS:
        this.#complete(buf.toString("utf8", start + 1, end), onReply);
        break;
      case MINUS:
        this.#complete(new RedisReplyError(buf.toString("utf8", start + 1, end)), onReply);
        break;
      case COLON:
        this.#complete(parseInteger(buf, start + 1, end), onReply);
        break;
      case DOLLAR:
        this.#startBulk(parseLength(buf, start + 1, end, "bulk"), onReply);
        break;
      default:
        this.#startArray(parseLength(buf, start + 1, end, "array"), onReply);
    }
    return true;
  }

  #startBulk(length: number, onReply: (reply: RespReply) => void): void {
    if (length === -1) return this.#complete(null, onReply);
    if (length > this.#limits.maxBulkBytes) throw new RespProtocolError(`a bulk string of ${length} bytes, more than ${this.#limits.maxBulkBytes}`);
    this.#charge(length + 2);
    const buf = this.#buf;
    const start = this.#pos;
    if (buf.length - start >= length + 2) {
      if (buf[start + length] !== CR || buf[start + length + 1] !== LF) throw new RespProtocolError("a bulk string not ended by CRLF");
      this.#pos = start + length + 2;
      // A copy: a reply kept by the caller does not pin the socket's whole chunk.
      return this.#complete(Buffer.from(buf.subarray(start, start + length)), onReply);
    }
    this.#bulk = { parts: [buf.subarray(start)], have: buf.length - start, length };
    this.#pos = buf.length;
  }

  /** Feeds a bulk string that is still arriving; returns the bytes after it once it is complete. */
  #continueBulk(bulk: PartialBulk, chunk: Buffer, onReply: (reply: RespReply) => void): Buffer | undefined {
    const need = bulk.length + 2 - bulk.have;
    if (chunk.length < need) {
      bulk.parts.push(chunk);
      bulk.have += chunk.length;
      return undefined;
    }
    bulk.parts.push(chunk.subarray(0, need));
    this.#bulk = undefined;
    const whole = Buffer.concat(bulk.parts, bulk.length + 2);
    if (whole[bulk.length] !== CR || whole[bulk.length + 1] !== LF) throw new RespProtocolError("a bulk string not ended by CRLF");
    this.#complete(whole.subarray(0, bulk.length), onReply);
    return chunk.subarray(need);
  }

  #startArray(length: number, onReply: (reply: RespReply) => void): void {
    if (length === -1) return this.#complete(null, onReply);
    if (length === 0) return this.#complete([], onReply);
    this.#elements += length;
    if (this.#elements > this.#limits.maxElements) throw new RespProtocolError(`a reply of more than ${this.#limits.maxElements} elements`);
    if (this.#stack.length >= this.#limits.maxDepth) throw new RespProtocolError(`arrays nested more than ${this.#limits.maxDepth} deep`);
    // Not preallocated: the length is the server's word, the elements are what arrived.
    this.#stack.push({ items: [], length });
  }

  /** A value is complete: into the array it belongs to, or out as a reply. */
  #complete(value: RespReply, onReply: (reply: RespReply) => void): void {
    let done = value;
    for (;;) {
      const top = this.#stack[this.#stack.length - 1];
      if (top === undefined) break;
      top.items.push(done);
      if (top.items.length < top.length) return;
      this.#stack.pop();
      done = top.items;
    }
    this.#replyBytes = 0;
    this.#elements = 0;
    onReply(done);
  }

  #charge(bytes: number): void {
    this.#replyBytes += bytes;
    if (this.#replyBytes > this.#limits.maxReplyBytes) throw new RespProtocolError(`a reply of more than ${this.#limits.maxReplyBytes} bytes`);
  }
}

/** `-1` or a decimal count (a `$` or `*` header). */
function parseLength(buf: Buffer, start: number, end: number, what: string): number {
  if (end - start === 2 && buf[start] === MINUS && buf[start + 1] === 49) return -1; // "-1"
  if (end === start || end - start > 10) throw new RespProtocolError(`a bad ${what} length`);
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i]! - 48;
    if (digit < 0 || digit > 9) throw new RespProtocolError(`a bad ${what} length`);
    n = n * 10 + digit;
  }
  return n;
}

/** A signed 64-bit decimal: a number, or a bigint where a number would lose digits. */
function parseInteger(buf: Buffer, start: number, end: number): number | bigint {
  const negative = buf[start] === MINUS;
  const first = negative ? start + 1 : start;
  if (end === first || end - first > 19) throw new RespProtocolError("a bad integer reply");
  let n = 0;
  for (let i = first; i < end; i++) {
    const digit = buf[i]! - 48;
    if (digit < 0 || digit > 9) throw new RespProtocolError("a bad integer reply");
    n = n * 10 + digit;
  }
  if (n <= Number.MAX_SAFE_INTEGER) return negative ? -n || 0 : n;
  const big = BigInt(buf.toString("latin1", start, end));
  if (big > 9223372036854775807n || big < -9223372036854775808n) throw new RespProtocolError("an integer reply past 64 bits");
  return big;
}
