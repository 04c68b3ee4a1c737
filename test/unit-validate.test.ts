import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ChatError } from "../src/errors.js";
import { codeOf } from "./helpers.js";
import { characterCount, checkName, checkRoom, checkText, checkTxn, nameKey, parseCursor, parseTimeout } from "../src/validate.js";


describe("checkName and checkRoom", () => {
  it("accept 1-32 characters of A-Z a-z 0-9 _ . -", () => {
    for (const ok of ["a", "x".repeat(32), "A-z_0.9", "__proto__", "constructor", "..", "-"]) {
      expect(checkName(ok)).toBe(ok);
    }
  });

  it("refuse everything else with 400 invalid_name, and a missing name with missing_parameter", () => {
    for (const bad of ["", "x".repeat(33), "é", "名前", "a b", "a/b", "a\nb", "a\0", "😀", " a", "a:b"]) {
      expect(codeOf(() => checkName(bad)), JSON.stringify(bad)).toBe("invalid_name");
    }
    expect(codeOf(() => checkName(undefined))).toBe("missing_parameter");
    expect(new ChatError("invalid_name").status).toBe(400);
  });

  it("lower-cases rooms and refuses bad ones with invalid_room", () => {
    expect(checkRoom("Lobby")).toBe("lobby");
    expect(checkRoom("__PROTO__")).toBe("__proto__");
    expect(codeOf(() => checkRoom(""))).toBe("invalid_room");
    expect(codeOf(() => checkRoom("r".repeat(33)))).toBe("invalid_room");
    expect(codeOf(() => checkRoom(undefined))).toBe("missing_parameter");
  });

  it("compares names case-insensitively through nameKey", () => {
    expect(nameKey("Alice")).toBe(nameKey("aLICE"));
  });
});

describe("parseCursor", () => {
  it("reads non-negative integers, and nothing as undefined", () => {
    expect(parseCursor(undefined)).toBeUndefined();
    expect(parseCursor("0")).toBe(0);
    expect(parseCursor("1795305708328000")).toBe(1795305708328000);
  });

  it("refuses anything else with invalid_cursor", () => {
    for (const bad of ["", "-1", "1.5", "1e3", "abc", " 1", "1 ", "+1", "\u0661", "0x10", "12345678901234567"]) {
      expect(codeOf(() => parseCursor(bad)), bad).toBe("invalid_cursor");
    }
  });
});

describe("parseTimeout", () => {
  it("falls back to the default when absent", () => {
    expect(parseTimeout(undefined, 4500, 30_000)).toBe(4500);
  });

  it("clamps to 0..max", () => {
    expect(parseTimeout("0", 4500, 30_000)).toBe(0);
    expect(parseTimeout("30000", 4500, 30_000)).toBe(30_000);
    expect(parseTimeout("30001", 4500, 30_000)).toBe(30_000);
    expect(parseTimeout("999999999", 4500, 30_000)).toBe(30_000);
    expect(parseTimeout("99999999999999999999", 4500, 30_000)).toBe(30_000);
  });

  it("refuses what is not a whole number with invalid_timeout", () => {
    for (const bad of ["", "-", "--1", "-+1", "+1", "1.5", "abc", "1e3", "1-", "\u0661"]) {
      expect(codeOf(() => parseTimeout(bad, 4500, 30_000)), bad).toBe("invalid_timeout");
    }
  });
});

describe("parseCursor and parseTimeout against the patterns they replace", () => {
  // The hand-written digit checks (no regex per poll, issue 14) accept exactly what /^\d{1,16}$/ and /^-?\d+$/ did.
  const text = fc.string({ unit: fc.constantFrom("0", "1", "9", "-", "+", " ", ".", "e", "a", "\u0661", "\u00b2"), maxLength: 20 });
  it("accept and refuse the same strings", () => {
    fc.assert(
      fc.property(text, (value) => {
        const cursorOk = /^\d{1,16}$/.test(value);
        expect(codeOf(() => parseCursor(value)) === undefined).toBe(cursorOk);
        if (cursorOk) expect(parseCursor(value)).toBe(Number(value));
        const timeoutOk = /^-?\d+$/.test(value);
        expect(codeOf(() => parseTimeout(value, 4500, 30_000)) === undefined).toBe(timeoutOk);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("checkText and characterCount", () => {
  it("counts code points, not UTF-16 units, when deciding whether a text is past the limit", () => {
    // "😀" is two UTF-16 units: ten of them are 20 units but 10 characters.
    expect(characterCount("😀".repeat(10), 5)).toBeGreaterThan(5);
    expect(characterCount("😀".repeat(5), 5)).toBeLessThanOrEqual(5);
    expect(characterCount("😀".repeat(10), 10)).toBeLessThanOrEqual(10);
    expect(characterCount("abc", 10)).toBe(3);
    // It stops counting once past the limit.
    expect(characterCount("x".repeat(100), 5)).toBeGreaterThan(5);
  });

  it("accepts up to the limit and refuses past it with 413 message_too_long", () => {
    expect(checkText("😀".repeat(5), 5)).toBe("😀".repeat(5));
    expect(codeOf(() => checkText("x".repeat(6), 5))).toBe("message_too_long");
    expect(new ChatError("message_too_long").status).toBe(413);
    expect(codeOf(() => checkText("", 5))).toBe("empty_message");
  });
});

describe("checkTxn", () => {
  it("accepts 1-128 printable ASCII characters", () => {
    expect(checkTxn(undefined)).toBeUndefined();
    expect(checkTxn("k-1")).toBe("k-1");
    expect(checkTxn("!".repeat(128))).toBe("!".repeat(128));
  });

  it("refuses anything else with 400", () => {
    for (const bad of ["", "a b", "é", "x".repeat(129), "a\nb"]) {
      expect(codeOf(() => checkTxn(bad)), JSON.stringify(bad)).toBe("bad_request");
    }
  });
});
