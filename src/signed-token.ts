/**
 * A session token as the cluster hands it out with --redis: the session's token (32 characters),
 * then the log position it was signed at ("ms-seq"), then a signature of 22 characters
 * (cluster/token-marks.ts makes and checks it). Only letters, digits, `-` and `_`, as every token.
 * It names the session of its first part, on every engine: what follows is evidence, not a secret.
 */

/** A session token: 24 random bytes, base64url. */
const BASE_CHARS = 32;
export const SIGNATURE_CHARS = 22;
const POSITION = /^\d{1,16}-\d{1,10}$/;

export interface SignedToken {
  readonly base: string;
  readonly position: string;
  readonly signature: string;
}

/** A presented token's parts, if it has the signed form; undefined for a plain token (or anything else). */
export function splitSigned(token: string): SignedToken | undefined {
  if (token.length <= BASE_CHARS + SIGNATURE_CHARS) return undefined;
  const position = token.slice(BASE_CHARS, -SIGNATURE_CHARS);
  if (!POSITION.test(position)) return undefined;
  return { base: token.slice(0, BASE_CHARS), position, signature: token.slice(-SIGNATURE_CHARS) };
}

/** The token, a position, a signature: one string. Only a session token of the usual length is signed. */
export function joinSigned(base: string, position: string, signature: string): string | undefined {
  const fits = base.length === BASE_CHARS && POSITION.test(position) && signature.length === SIGNATURE_CHARS;
  return fits ? base + position + signature : undefined;
}

/** The session token a presented token names: its own, or a signed one's first part. */
export function sessionToken(token: string): string {
  return splitSigned(token)?.base ?? token;
}

/**
 * A poll answer's `mark` with --redis: a log position ("ms-seq"), a dot, a signature of 22
 * characters (cluster/token-marks.ts). Opaque to clients, who send back the newest one they got.
 */
export interface SignedMark {
  readonly position: string;
  readonly signature: string;
}

/** A presented mark's parts, if it has the form; undefined for anything else (ignored, never an error). */
export function splitMark(mark: string | undefined): SignedMark | undefined {
  if (mark === undefined || mark.length > 28 + SIGNATURE_CHARS) return undefined;
  const dot = mark.indexOf(".");
  const position = mark.slice(0, dot);
  const signature = mark.slice(dot + 1);
  return dot > 0 && POSITION.test(position) && /^[A-Za-z0-9_-]{22}$/.test(signature) ? { position, signature } : undefined;
}

export function joinMark(position: string, signature: string): string | undefined {
  return POSITION.test(position) && signature.length === SIGNATURE_CHARS ? `${position}.${signature}` : undefined;
}
