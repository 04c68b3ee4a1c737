import { ChatError } from "./errors.js";
import { TERMINAL_CONTROL } from "./message.js";

/**
 * Names and rooms share one alphabet (spec §2); anything else is refused, never
 * cleaned up. The one place it is written: text commands (@name), log records
 * and replay read it from here.
 */
export const NAME_CHARS = "[A-Za-z0-9_.-]{1,32}";
const NAME_PATTERN = new RegExp(`^${NAME_CHARS}$`);

/** A name or room as the hub admits it (either case). */
export function isName(value: unknown): value is string {
  return typeof value === "string" && NAME_PATTERN.test(value);
}

/** A room as the hub names it: admitted, and in lower case (checkRoom). */
export function isRoomKey(value: string): boolean {
  return NAME_PATTERN.test(value) && value === value.toLowerCase();
}

export function checkName(value: string | undefined): string {
  if (value === undefined) throw new ChatError("missing_parameter", "name is required.");
  if (!NAME_PATTERN.test(value)) throw new ChatError("invalid_name");
  return value;
}

/** Rooms compare case-insensitively and are reported in lower case. */
export function checkRoom(value: string | undefined): string {
  if (value === undefined) throw new ChatError("missing_parameter", "room is required.");
  if (!NAME_PATTERN.test(value)) throw new ChatError("invalid_room");
  return value.toLowerCase();
}

export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A cursor is an id the client has seen; 0 means "nothing yet". */
export function parseCursor(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value.length > 16 || !isDigits(value, 0)) throw new ChatError("invalid_cursor");
  return Number(value);
}

/** One or more ASCII digits from `from` to the end: what every poll's cursor and timeout are checked with, so no regex. */
function isDigits(value: string, from: number): boolean {
  if (value.length <= from) return false;
  for (let i = from; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Milliseconds, clamped to 0..max (spec §3: a negative number is 0, not an error); garbage is an error, not a default. */
export function parseTimeout(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  // Any run of digits is a timeout: a huge one clamps like 30001 does (the query's size is capped by the header limit).
  const negative = value.startsWith("-");
  if (!isDigits(value, negative ? 1 : 0)) throw new ChatError("invalid_timeout");
  if (negative) return 0;
  return Math.min(Number(value), max);
}

/**
 * Length in characters (code points), so an emoji counts once; counted only
 * past `stopAfter`. Below it the UTF-16 length is returned: never fewer code
 * points than that, so it says "within the limit" just as well.
 */
export function characterCount(text: string, stopAfter: number): number {
  if (text.length <= stopAfter) return text.length;
  let count = 0;
  for (const _ of text) if (++count > stopAfter) break;
  return count;
}

export function checkText(text: string, maxMessage: number): string {
  if (text.length === 0) throw new ChatError("empty_message");
  if (characterCount(text, maxMessage) > maxMessage) {
    throw new ChatError("message_too_long", `A message is at most ${maxMessage} characters.`);
  }
  // Refused, not cleaned: every transport shows the same text, and the sender learns why.
  if (TERMINAL_CONTROL.test(text)) throw new ChatError("invalid_text");
  return text;
}

/** An idempotency key for posts (spec §5): printable ASCII, so it can travel in a query. */
export function checkTxn(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) throw new ChatError("bad_request", "txn is 1-128 printable ASCII characters.");
  return value;
}
