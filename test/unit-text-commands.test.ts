import { describe, expect, it } from "vitest";
import { parseText } from "../src/commands/parse-text.js";
import { escapeLineBreaks, textLine, type ChatMessage } from "../src/message.js";

describe("parseText", () => {
  it("reads plain text as a message", () => {
    expect(parseText("hello world")).toEqual({ kind: "message", text: "hello world" });
    expect(parseText("  /who")).toEqual({ kind: "message", text: "  /who" });
    expect(parseText("email@example.com")).toEqual({ kind: "message", text: "email@example.com" });
  });

  it("reads `@bob text` as a private message whose text follows `@bob `", () => {
    expect(parseText("@bob hi there")).toEqual({ kind: "private", to: "bob", text: "hi there" });
    expect(parseText("@b.o_b-1 x")).toEqual({ kind: "private", to: "b.o_b-1", text: "x" });
    expect(parseText("@bob line1\nline2")).toEqual({ kind: "private", to: "bob", text: "line1\nline2" });
  });

  it("does not read an @ without a space, or with a bad name, as private", () => {
    expect(parseText("@bob")).toEqual({ kind: "message", text: "@bob" });
    expect(parseText("@ bob hi")).toEqual({ kind: "message", text: "@ bob hi" });
    expect(parseText("@bób hi")).toEqual({ kind: "message", text: "@bób hi" });
    expect(parseText(`@${"x".repeat(33)} hi`)).toEqual({ kind: "message", text: `@${"x".repeat(33)} hi` });
  });

  it("reads /who, /rooms, /join R and /leave as commands, in any case", () => {
    expect(parseText("/who")).toEqual({ kind: "command", command: "who", argument: "" });
    expect(parseText("/ROOMS")).toEqual({ kind: "command", command: "rooms", argument: "" });
    expect(parseText("/join  dev ")).toEqual({ kind: "command", command: "join", argument: "dev" });
    expect(parseText("/leave")).toEqual({ kind: "command", command: "leave", argument: "" });
    expect(parseText("/dance now")).toEqual({ kind: "command", command: "dance", argument: "now" });
  });

  it("does not read a path or a slash alone as a command", () => {
    expect(parseText("/usr/bin")).toEqual({ kind: "message", text: "/usr/bin" });
    expect(parseText("/")).toEqual({ kind: "message", text: "/" });
    expect(parseText("/join1")).toEqual({ kind: "message", text: "/join1" });
  });
});

describe("text lines", () => {
  const base: ChatMessage = { id: 1, type: "message", room: "lobby", from: "alice", text: "hi", ts: 0 };

  it("writes each type in the spec's form", () => {
    expect(textLine(base)).toBe("alice : hi");
    expect(textLine({ ...base, type: "private", to: "bob" })).toBe("alice -> bob : hi");
    expect(textLine({ ...base, type: "join", text: "" })).toBe("* alice joined lobby");
    expect(textLine({ ...base, type: "leave", text: "" })).toBe("* alice left lobby");
    expect(textLine({ ...base, type: "gap", missed: 12 })).toBe("* 12 messages missed");
    expect(textLine({ ...base, type: "gap", missed: null })).toBe("* some messages missed");
    expect(textLine({ ...base, type: "system", from: "", text: "members of lobby: alice" })).toBe("* members of lobby: alice");
  });

  it("writes CR, LF and CRLF as the two characters \\n", () => {
    expect(escapeLineBreaks("a\r\nb\nc\rd")).toBe("a\\nb\\nc\\nd");
    const line = textLine({ ...base, text: "x\nbob : forged\r\n* eve joined lobby" });
    expect(line).not.toMatch(/[\r\n]/);
    expect(line).toBe("alice : x\\nbob : forged\\n* eve joined lobby");
    expect(textLine({ ...base, type: "system", text: "a\nb" })).toBe("* a\\nb");
  });
});
