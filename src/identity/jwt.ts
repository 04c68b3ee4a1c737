import { createHmac, timingSafeEqual } from "node:crypto";
import { isName } from "../validate.js";

/**
 * Verifying a JWT signed by the host application (spec §4): HS256 only, with
 * node:crypto. Pure: the secret and the time are given, nothing is kept.
 *
 * Strict on purpose, since a name is what it proves: exactly three base64url
 * segments in canonical form (no padding, no `+` `/`, and no spare bits set:
 * each segment must re-encode to itself, so one token has one spelling),
 * `alg` HS256 and nothing else, the signature compared in constant time
 * before any claim is read, `exp`/`nbf`/`iat` honoured with CLOCK_SKEW_SECONDS
 * of allowance, `sub` a valid name, `rooms` (when present) a list of valid rooms.
 */

/** Clocks of the host and of pollchat may differ by this much, in seconds: exp, nbf and iat are judged with it. */
export const CLOCK_SKEW_SECONDS = 30;

/** A longer token is refused unread (a header line is bounded anyway; this bounds the work). */
export const MAX_JWT_LENGTH = 8192;

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits. */
export const MIN_SECRET_BYTES = 32;

/** What a valid token says: the name, and the rooms it may join (lower case, in the order listed), if it limits them. */
export interface JwtClaims {
  readonly sub: string;
  readonly rooms: readonly string[] | undefined;
}

export type JwtResult = { readonly ok: true; readonly claims: JwtClaims } | { readonly ok: false; readonly reason: string };

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Verifies `token` against `secret` at `nowMs`; never throws. */
export function verifyJwt(token: string, secret: string | Buffer, nowMs: number): JwtResult {
  if (token.length > MAX_JWT_LENGTH) return refuse("the JWT is too long");
  const parts = token.split(".");
  if (parts.length !== 3) return refuse("a JWT is three base64url segments joined by dots");
  const [headerText, payloadText, signatureText] = parts as [string, string, string];
  const header = decodeSegment(headerText);
  const payload = decodeSegment(payloadText);
  const signature = decodeSegment(signatureText);
  if (!header || !payload || !signature) return refuse("a JWT segment is not canonical base64url");

  const head = parseObject(header);
  if (!head) return refuse("the JWT header is not a JSON object");
  if (head.get("alg") !== "HS256") return refuse("only alg HS256 is accepted");
  // A media type, compared without case, its "application/" optional (RFC 7515 §4.1.9).
  const typ = head.get("typ");
  if (typ !== undefined && (typeof typ !== "string" || !/^(application\/)?jwt$/i.test(typ))) return refuse("typ must be JWT");
  // RFC 7515 §4.1.11: an extension we would have to understand; we understand none.
  if (head.has("crit")) return refuse("crit extensions are not supported");

  const expected = createHmac("sha256", secret).update(`${headerText}.${payloadText}`).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return refuse("bad signature");

  const claims = parseObject(payload);
  if (!claims) return refuse("the JWT payload is not a JSON object");
  const now = nowMs / 1000;
  const exp = claims.get("exp");
  const nbf = claims.get("nbf");
  const iat = claims.get("iat");
  if (!isNumericDate(exp) || !isNumericDate(nbf) || !isNumericDate(iat)) return refuse("exp, nbf and iat are numbers of seconds");
  if (exp !== undefined && now >= exp + CLOCK_SKEW_SECONDS) return refuse("the JWT has expired");
  if (nbf !== undefined && now < nbf - CLOCK_SKEW_SECONDS) return refuse("the JWT is not valid yet (nbf)");
  if (iat !== undefined && now < iat - CLOCK_SKEW_SECONDS) return refuse("the JWT was issued in the future (iat)");
  const sub = claims.get("sub");
  if (!isName(sub)) return refuse("sub must be a name: 1-32 characters of A-Z a-z 0-9 _ . -");
  if (!claims.has("rooms")) return { ok: true, claims: { sub, rooms: undefined } };
  const rooms = claims.get("rooms");
  // How many it may list is bounded by MAX_JWT_LENGTH.
  if (!Array.isArray(rooms) || rooms.length === 0 || !rooms.every(isName)) return refuse("rooms must be a list of room names, at least one");
  return { ok: true, claims: { sub, rooms: [...new Set(rooms.map((room) => room.toLowerCase()))] } };
}

function refuse(reason: string): JwtResult {
  return { ok: false, reason };
}

/** The bytes of a canonical base64url segment, or undefined: Node's decoder skips what it does not know, so re-encoding must give the same text back. */
function decodeSegment(text: string): Buffer | undefined {
  if (!SEGMENT.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.length > 0 && bytes.toString("base64url") === text ? bytes : undefined;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A JSON object as a Map of its own keys (no prototype to trip on: `__proto__` is just a key), or undefined. */
function parseObject(bytes: Buffer): Map<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  return new Map(Object.entries(value));
}

/** Absent, or a finite number of seconds (RFC 7519 NumericDate: fractions allowed). */
function isNumericDate(value: unknown): value is number | undefined {
  return value === undefined || (typeof value === "number" && Number.isFinite(value));
}
