/**
 * Every error pollchat answers with, in one table: a stable code, its HTTP
 * status and the message a client sees when the thrower gives none.
 * Handlers throw ChatError; the router turns it into a response in one place.
 */
export const ERRORS = {
  bad_request: [400, "The request is malformed."],
  invalid_name: [400, "A name is 1-32 characters of A-Z a-z 0-9 _ . -"],
  invalid_room: [400, "A room is 1-32 characters of A-Z a-z 0-9 _ . -"],
  missing_parameter: [400, "A required parameter is missing."],
  repeated_parameter: [400, "A parameter was given more than once."],
  bad_encoding: [400, "The request has invalid percent-encoding or invalid UTF-8."],
  bad_json: [400, "The body is not a JSON object."],
  invalid_cursor: [400, "A cursor is a non-negative integer."],
  invalid_timeout: [400, "A timeout is a whole number of milliseconds."],
  empty_message: [400, "The message is empty."],
  invalid_text: [400, "The message holds a control character or a bidi override; those are refused."],
  unauthorized: [401, "This needs a valid token: join through POST /api/join."],
  not_in_room: [403, "You are not a member of that room."],
  too_many_rooms: [403, "You are in as many rooms as one session may be."],
  room_not_allowed: [403, "Your identity does not allow that room (the rooms claim of its JWT)."],
  not_found: [404, "Nothing here."],
  unknown_recipient: [404, "No such user."],
  unknown_room: [404, "No such room."],
  method_not_allowed: [405, "That method is not allowed here."],
  name_taken: [409, "That name is taken."],
  message_too_long: [413, "The message is too long."],
  body_too_large: [413, "The body is too large."],
  unsupported_media_type: [415, "The body must be application/json."],
  rate_limited: [429, "Too many messages; slow down."],
  too_many_sessions: [429, "Too many sessions from your address."],
  server_full: [503, "The server has as many sessions as it allows."],
  shutting_down: [503, "The server is shutting down."],
  too_many_connections: [503, "Too many connections from your address."],
  store_unavailable: [503, "Messages cannot be stored now; try again later."],
  internal: [500, "Internal error."],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

export class ChatError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before trying again (429, 503). */
  readonly retryAfter: number | undefined;
  /** Extra response headers, e.g. Allow for 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, opts: { retryAfter?: number; headers?: Record<string, string> } = {}) {
    super(message ?? ERRORS[code][1]);
    this.name = "ChatError";
    this.code = code;
    this.status = ERRORS[code][0];
    this.retryAfter = opts.retryAfter;
    this.headers = opts.headers ?? {};
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
