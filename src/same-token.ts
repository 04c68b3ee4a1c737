import { createHash, timingSafeEqual } from "node:crypto";
import { sessionToken } from "./signed-token.js";

/**
 * Whether a presented token is the expected one, in time that does not depend
 * on where they differ: `!==` stops at the first differing character, which
 * lets a patient client guess a token one character at a time. Both sides are
 * hashed first, so the compared buffers have equal length whatever was sent,
 * and the time says nothing about the length either. Undefined matches nothing.
 */
export function sameToken(expected: string | undefined, presented: string | undefined): boolean {
  if (expected === undefined || presented === undefined) return false;
  // A signed token (--redis) is its session's token and a proof after it.
  return timingSafeEqual(digest(expected), digest(sessionToken(presented)));
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}
