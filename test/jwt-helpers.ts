import { createHmac } from "node:crypto";

/** A secret long enough for HS256 (32 bytes, RFC 7518 §3.2). */
export const SECRET = "test-secret-of-at-least-32-bytes!!";

export function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

/** A JWT signed here, independently of src/: header and payload as given, HS256 over them. */
export function signJwt(payload: Record<string, unknown>, secret: string = SECRET, header: Record<string, unknown> = { alg: "HS256", typ: "JWT" }): string {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}

/** Signs an arbitrary signing input (segments already encoded, canonical or not). */
export function signRaw(signingInput: string, secret: string = SECRET): string {
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}

/** Now, in JWT seconds. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A base64url segment with the same bytes but its last character's spare bits set: decodes the same, is not canonical. */
export function withSpareBits(segment: string): string | undefined {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const spare = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  if (spare === 0) return undefined;
  const last = alphabet.indexOf(segment.at(-1)!);
  for (let bits = 1; bits < 1 << spare; bits++) {
    const candidate = segment.slice(0, -1) + alphabet[last | bits]!;
    if (candidate !== segment) return candidate;
  }
  return undefined;
}
