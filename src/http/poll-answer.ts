import type { ServerResponse } from "node:http";
import type { Envelope } from "../message.js";
import type { Session } from "../session.js";
import type { Subscription } from "../subscription.js";

/** How a poll answer's body looks: the seed's text lines, or the JSON of spec §4. */
export type PollFormat = "text" | "json";

export interface PollRequest {
  client: Session;
  /** With a cursor, entries stay queued until a later poll acknowledges them; without, until this answer is handed over. */
  cursor: number | undefined;
  timeoutMs: number;
  format: PollFormat;
  /** With --redis: the signed newest position applied here, asked when the answer is written (README, the JSON API: `mark`). */
  mark?: (() => string | undefined) | undefined;
}

/** Writes what the client's queue holds now (perhaps nothing, at most ANSWER_MAX_BYTES of it) with the cursor to send next. */
export function answerPoll(sub: Subscription, res: ServerResponse, { cursor, format, mark }: PollRequest): void {
  const entries = answerEntries(sub.pending(), format);
  const next = sub.cursorAfter(entries);
  const signed = mark?.();
  const body = answerBody(entries, format, next, signed);
  const type = CONTENT_TYPES[format];
  // Without a cursor nothing else will acknowledge these: they leave the queue once handed over whole.
  if (cursor === undefined && entries.length > 0) sendAcknowledged(res, type, body, next, () => sub.ack(next), signed);
  else sendAnswer(res, type, body, next, signed);
}

/** An answer's body with its UTF-8 length. */
export interface AnswerBody {
  readonly text: string;
  readonly bytes: number;
  /** A shared solo body's whole header list (its cursor is its one entry's id): built once, written by every answer (Node only reads it). */
  readonly headers?: string[];
}

/**
 * The last answer of exactly one message, per format: a post to a room of
 * 1,000 wakes 1,000 polls that each answer just that message with its id as
 * the cursor, and they share one body and one header list (built, flattened and measured once).
 */
const lastSolo = {
  text: { entry: undefined as Envelope | undefined, mark: undefined as string | undefined, body: { text: "", bytes: 0 } as AnswerBody },
  json: { entry: undefined as Envelope | undefined, mark: undefined as string | undefined, body: { text: "", bytes: 0 } as AnswerBody },
};

/** The body of an answer carrying `entries` with `cursor` to send next (pollBody), measured from its entries' cached lengths. */
export function answerBody(entries: readonly Envelope[], format: PollFormat, cursor: number, mark?: string): AnswerBody {
  const solo = entries.length === 1 && entries[0]!.id === cursor ? lastSolo[format] : undefined;
  if (solo !== undefined && solo.entry === entries[0] && solo.mark === mark) return solo.body;
  const bytes = answerBytes(entries, format, cursor, mark);
  const text = pollBody(entries, format, cursor, mark);
  if (solo === undefined) return { text, bytes };
  solo.entry = entries[0];
  solo.mark = mark;
  solo.body = { text, bytes, headers: answerHeaders(CONTENT_TYPES[format], bytes, cursor, mark) };
  return solo.body;
}

/** The UTF-8 length of pollBody(entries, format, cursor), from the entries' cached lengths (a HEAD builds no body). */
export function answerBytes(entries: readonly Envelope[], format: PollFormat, cursor: number, mark?: string): number {
  let bytes = 0;
  for (const e of entries) bytes += format === "json" ? e.jsonBytes : e.lineBytes;
  // '{"messages":[' ... '],"cursor":' N '}', and a comma between entries.
  if (format === "json") bytes += 13 + Math.max(0, entries.length - 1) + 11 + String(cursor).length + 1;
  // ',"mark":"' M '"' (a mark is ASCII: digits, '-', '.', base64url).
  if (format === "json" && mark !== undefined) bytes += 10 + mark.length;
  return bytes;
}

export const CONTENT_TYPES = { json: "application/json; charset=utf-8", text: "text/plain; charset=utf-8" } as const;

/** The header list of a poll answer (writeHead's flat form: no header object and key list per answer). */
export function answerHeaders(contentType: string, bytes: number, cursor: number, mark?: string): string[] {
  const headers = ["Content-Type", contentType, "Content-Length", String(bytes), "Cache-Control", "no-store", "X-Cursor", String(cursor)];
  if (mark !== undefined) headers.push("X-Mark", mark);
  return headers;
}

/** send() of respond.ts for a poll answer. */
function sendAnswer(res: ServerResponse, contentType: string, body: AnswerBody, cursor: number, mark?: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, body.headers ?? answerHeaders(contentType, body.bytes, cursor, mark));
  res.end(body.text);
}

/**
 * Most body bytes one poll answer carries (spec §8), unless its first message
 * alone is longer: the rest waits for the next poll. It bounds what a client
 * that stops reading pins, and what a cut answer can take with it.
 */
export const ANSWER_MAX_BYTES = 1024 * 1024;

/** The JSON body around its messages: `{"messages":[`, `],"cursor":`, a cursor of up to 16 digits, a mark of up to 50, `}`. */
const JSON_FRAME_BYTES = 100;

/** The queued entries (oldest first) one answer carries: whole entries up to ANSWER_MAX_BYTES of body, at least one. */
export function answerEntries(queued: readonly Envelope[], format: PollFormat): readonly Envelope[] {
  let bytes = format === "json" ? JSON_FRAME_BYTES : 0;
  for (let n = 0; n < queued.length; n++) {
    const entry = queued[n]!;
    // A JSON entry costs its comma too (one too many for the first: the bound is not that tight).
    bytes += format === "json" ? entry.jsonBytes + 1 : entry.lineBytes;
    if (bytes > ANSWER_MAX_BYTES && n > 0) return queued.slice(0, n);
  }
  return queued;
}

export function pollBody(entries: readonly Envelope[], format: PollFormat, cursor: number, mark?: string): string {
  if (format === "text") {
    let body = "";
    for (const e of entries) body += e.line;
    return body;
  }
  let body = '{"messages":[';
  for (let i = 0; i < entries.length; i++) body += (i > 0 ? "," : "") + entries[i]!.json;
  return body + '],"cursor":' + cursor + (mark === undefined ? "" : ',"mark":"' + mark + '"') + "}";
}

/**
 * Writes a whole answer, as respond.ts's send() does, and calls `handedOver`
 * once its bytes are known to be in the kernel's hands (spec §5): the write's
 * callback without an error, on a socket still open. `finish` is not that proof:
 * Node emits it for an answer whose socket died with the bytes still queued, and
 * calls a pending write's callback without an error when its socket was destroyed.
 * An answer queued behind another on a connection that then closes is never
 * written, and never acknowledged: a duplicate beats a loss.
 */
export function sendAcknowledged(
  res: ServerResponse,
  contentType: string,
  body: AnswerBody,
  cursor: number,
  handedOver: () => void,
  mark?: string,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, body.headers ?? answerHeaders(contentType, body.bytes, cursor, mark));
  res.write(body.text, (error) => {
    const socket = res.socket;
    if (error == null && socket !== null && !socket.destroyed && !res.destroyed) handedOver();
  });
  res.end();
}
