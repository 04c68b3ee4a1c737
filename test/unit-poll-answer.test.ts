import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { answerBody } from "../src/http/poll-answer.js";
import { Envelope } from "../src/message.js";

/** Poll answer bodies measured from their entries' cached lengths, and shared by the answers of one fan-out (issue 14). */

function envelope(id: number, text: string): Envelope {
  return new Envelope({ id, type: "message", room: "lobby", from: "ann", text, ts: 1 });
}

describe("answerBody", () => {
  it("says the exact UTF-8 length of any body, text or JSON, without scanning it", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "grapheme", maxLength: 20 }), { maxLength: 8 }), fc.nat(2 ** 40), (texts, cursor) => {
        const entries = texts.map((text, i) => envelope(i + 1, text));
        for (const format of ["text", "json"] as const) {
          const body = answerBody(entries, format, cursor);
          expect(body.bytes).toBe(Buffer.byteLength(body.text));
          if (format === "json") expect(JSON.parse(body.text)).toEqual({ messages: entries.map((e) => e.message), cursor });
          else expect(body.text).toBe(entries.map((e) => e.line).join(""));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives every answer of the same one message, with its id as the cursor, the same body", () => {
    const hi = envelope(7, "hi é");
    const first = answerBody([hi], "json", 7);
    expect(answerBody([hi], "json", 7)).toBe(first);
    expect(answerBody([hi], "text", 7)).not.toBe(first);
    expect(answerBody([hi], "text", 7).text).toBe("ann : hi é\n");
    // Another message, or another cursor, is another body.
    const next = answerBody([envelope(8, "yo")], "json", 8);
    expect(next).not.toBe(first);
    expect(JSON.parse(next.text).messages[0].text).toBe("yo");
    expect(JSON.parse(answerBody([hi], "json", 9).text).cursor).toBe(9);
  });
});
