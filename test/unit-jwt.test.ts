import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { IdentitySource } from "../src/identity/identity-source.js";
import { CLOCK_SKEW_SECONDS, MAX_JWT_LENGTH, verifyJwt } from "../src/identity/jwt.js";
import { b64url, SECRET, signJwt, signRaw, withSpareBits } from "./jwt-helpers.js";

const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;

function reason(token: string, secret: string = SECRET): string | undefined {
  const result = verifyJwt(token, secret, NOW_MS);
  return result.ok ? undefined : result.reason;
}

describe("verifyJwt", () => {
  it("accepts an HS256 token and returns sub and the rooms, lower case and deduplicated", () => {
    expect(verifyJwt(signJwt({ sub: "carol", exp: NOW + 60 }), SECRET, NOW_MS)).toEqual({ ok: true, claims: { sub: "carol", rooms: undefined } });
    const withRooms = verifyJwt(signJwt({ sub: "carol", rooms: ["Dev", "ops", "dev"] }), SECRET, NOW_MS);
    expect(withRooms).toEqual({ ok: true, claims: { sub: "carol", rooms: ["dev", "ops"] } });
    // No typ, an unknown header field and extra claims are fine.
    expect(reason(signJwt({ sub: "carol", aud: "x" }, SECRET, { alg: "HS256", kid: "k1" }))).toBeUndefined();
  });

  it("refuses alg none, another alg, a bad typ and crit", () => {
    const payload = b64url(JSON.stringify({ sub: "carol" }));
    expect(reason(`${b64url(JSON.stringify({ alg: "none" }))}.${payload}.`)).toMatch(/three base64url|canonical/);
    expect(reason(`${b64url(JSON.stringify({ alg: "none" }))}.${payload}.${b64url("x")}`)).toBe("only alg HS256 is accepted");
    for (const alg of ["HS384", "HS512", "RS256", "hs256", "ES256", "", null]) {
      expect(reason(signJwt({ sub: "carol" }, SECRET, { alg }))).toBe("only alg HS256 is accepted");
    }
    expect(reason(signJwt({ sub: "carol" }, SECRET, { typ: "JWT" }))).toBe("only alg HS256 is accepted");
    expect(reason(signJwt({ sub: "carol" }, SECRET, { alg: "HS256", typ: "JWS" }))).toBe("typ must be JWT");
    expect(reason(signJwt({ sub: "carol" }, SECRET, { alg: "HS256", typ: 1 }))).toBe("typ must be JWT");
    expect(reason(signJwt({ sub: "carol" }, SECRET, { alg: "HS256", typ: "application/jwt" }))).toBeUndefined();
    expect(reason(signJwt({ sub: "carol" }, SECRET, { alg: "HS256", crit: ["exp"] }))).toBe("crit extensions are not supported");
  });

  it("refuses a signature made with another secret, cut short, or of other bytes", () => {
    const token = signJwt({ sub: "carol" });
    expect(reason(signJwt({ sub: "carol" }, "another-secret-of-at-least-32-bytes"))).toBe("bad signature");
    expect(reason(token.slice(0, token.lastIndexOf(".") + 1) + b64url(Buffer.alloc(32)))).toBe("bad signature");
    expect(reason(token.slice(0, token.lastIndexOf(".") + 1) + b64url(Buffer.alloc(31)))).toBe("bad signature");
    const [h, , s] = token.split(".");
    expect(reason(`${h}.${b64url(JSON.stringify({ sub: "mallory" }))}.${s}`)).toBe("bad signature");
  });

  it("refuses malformed tokens", () => {
    for (const bad of ["", "abc", "a.b", "a.b.c.d", "..", "a..b", `${signJwt({ sub: "carol" })}.`, "x".repeat(MAX_JWT_LENGTH + 1)]) {
      expect(reason(bad), bad.slice(0, 40)).toBeDefined();
    }
    // Signed properly, but the header or payload is no JSON object.
    expect(reason(signRaw(`${b64url("not json")}.${b64url("{}")}`))).toBe("the JWT header is not a JSON object");
    expect(reason(signRaw(`${b64url('{"alg":"HS256"}')}.${b64url("[1]")}`))).toBe("the JWT payload is not a JSON object");
    expect(reason(signRaw(`${b64url('{"alg":"HS256"}')}.${b64url(Buffer.from([0xff, 0xfe]))}`))).toBe("the JWT payload is not a JSON object");
  });

  it("refuses base64url that is not canonical: padding, + and /, spare bits set", () => {
    const header = b64url(JSON.stringify({ alg: "HS256" }));
    // 16 bytes: 22 characters, so it needs padding and its last character has spare bits.
    const payload = b64url(JSON.stringify({ sub: "carol1" }));
    expect(payload.length % 4).toBe(2);
    // Each a validly signed token over the non-canonical text: only the encoding is wrong.
    const padded = payload.length % 4 === 0 ? payload : payload + "=".repeat(4 - (payload.length % 4));
    expect(padded).not.toBe(payload);
    expect(reason(signRaw(`${header}.${padded}`))).toBe("a JWT segment is not canonical base64url");
    const spare = withSpareBits(payload);
    expect(spare).toBeDefined();
    expect(Buffer.from(spare!, "base64url")).toEqual(Buffer.from(payload, "base64url"));
    expect(reason(signRaw(`${header}.${spare}`))).toBe("a JWT segment is not canonical base64url");
    // A signature with spare bits set: same bytes, another spelling.
    const token = signRaw(`${header}.${payload}`);
    const sig = token.split(".")[2]!;
    expect(reason(`${header}.${payload}.${withSpareBits(sig)}`)).toBe("a JWT segment is not canonical base64url");
    // Standard base64 (+ /) for bytes that need them.
    const plus = Buffer.from(JSON.stringify({ sub: "carol", x: "\u00fb\u00ff\u00fe>>?" })).toString("base64");
    expect(plus).toMatch(/[+/]/);
    expect(reason(signRaw(`${header}.${plus.replace(/=+$/, "")}`))).toBe("a JWT segment is not canonical base64url");
    // One character past a whole group decodes to nothing: not canonical either.
    expect(header.length % 4).toBe(0);
    expect(reason(signRaw(`${header}A.${payload}`))).toBe("a JWT segment is not canonical base64url");
  });

  it(`honours exp, nbf and iat with ${CLOCK_SKEW_SECONDS} s of clock skew`, () => {
    const skew = CLOCK_SKEW_SECONDS;
    expect(reason(signJwt({ sub: "carol", exp: NOW - skew - 1 }))).toBe("the JWT has expired");
    expect(reason(signJwt({ sub: "carol", exp: NOW - skew }))).toBe("the JWT has expired");
    expect(reason(signJwt({ sub: "carol", exp: NOW - skew + 1 }))).toBeUndefined();
    expect(reason(signJwt({ sub: "carol", nbf: NOW + skew + 1 }))).toBe("the JWT is not valid yet (nbf)");
    expect(reason(signJwt({ sub: "carol", nbf: NOW + skew }))).toBeUndefined();
    expect(reason(signJwt({ sub: "carol", iat: NOW + skew + 1 }))).toBe("the JWT was issued in the future (iat)");
    expect(reason(signJwt({ sub: "carol", iat: NOW + skew, nbf: NOW - 5, exp: NOW + 5 }))).toBeUndefined();
    for (const exp of ["9999999999", null, true, [1], { a: 1 }]) {
      expect(reason(signJwt({ sub: "carol", exp }))).toBe("exp, nbf and iat are numbers of seconds");
    }
  });

  it("refuses a sub that is not a valid name, and a rooms claim that is not a list of rooms", () => {
    for (const sub of [undefined, "", "a b", "x".repeat(33), "caröl", 7, ["carol"], null]) {
      expect(reason(signJwt({ sub })), String(sub)).toBe("sub must be a name: 1-32 characters of A-Z a-z 0-9 _ . -");
    }
    expect(reason(signJwt({ sub: "__proto__" }))).toBeUndefined();
    for (const rooms of [[], "dev", ["dev", "no room"], [7], null, { 0: "dev" }]) {
      expect(reason(signJwt({ sub: "carol", rooms })), JSON.stringify(rooms).slice(0, 40)).toMatch(/^rooms must be a list/);
    }
  });

  it("reads claims as own keys only: a __proto__ key is just a key", () => {
    const token = signRaw(`${b64url('{"alg":"HS256"}')}.${b64url('{"__proto__":{"sub":"carol"}}')}`);
    expect(reason(token)).toMatch(/^sub must be a name/);
  });
});

describe("IdentitySource", () => {
  const req = (authorization?: string): IncomingMessage => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
  const token = signJwt({ sub: "carol", rooms: ["dev"] });

  it("finds a JWT in Authorization only with a secret, and tells it from a session token by its dots", () => {
    const withSecret = new IdentitySource({ jwtSecret: SECRET });
    expect(withSecret.presentedJwt(req(`Bearer ${token}`))).toBe(token);
    expect(withSecret.presentedJwt(req("Bearer abcDEF123_-"))).toBeUndefined();
    expect(withSecret.presentedJwt(req(`Basic ${token}`))).toBeUndefined();
    expect(new IdentitySource({ authenticate: () => "x" }).presentedJwt(req(`Bearer ${token}`))).toBeUndefined();
  });

  it("a presented JWT decides (a bad one is never passed to the hook); without one the hook does", async () => {
    let calls = 0;
    const source = new IdentitySource({ jwtSecret: SECRET, authenticate: () => (calls++, "dave") });
    expect(await source.ofRequest(req(`Bearer ${token}`))).toEqual({ name: "carol", rooms: new Set(["dev"]) });
    await expect(source.ofRequest(req(`Bearer ${token}x`))).rejects.toMatchObject({ code: "unauthorized" });
    expect(calls).toBe(0);
    expect(await source.ofRequest(req())).toEqual({ name: "dave", rooms: undefined });
    expect(calls).toBe(1);
    const bad = new IdentitySource({ authenticate: async () => "no such name!" });
    await expect(bad.ofRequest(req())).rejects.toMatchObject({ code: "unauthorized" });
    await expect(new IdentitySource({ jwtSecret: SECRET }).ofRequest(req())).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("judges time by its clock", () => {
    const source = new IdentitySource({ jwtSecret: SECRET, now: () => NOW_MS });
    expect(() => source.fromJwt(signJwt({ sub: "carol", exp: NOW - 60 }))).toThrow(/expired/);
    expect(source.fromJwt(signJwt({ sub: "carol", exp: NOW + 60 })).name).toBe("carol");
  });
});
