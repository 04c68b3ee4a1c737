import { describe, expect, it } from "vitest";
import { SseParser, type SseEvent } from "../src/client/sse-parser.js";

// The client's event-stream parser: fed whole, or cut at every byte, it finds the same events.

const STREAM = [
  "retry: 2000",
  "",
  ": heartbeat",
  "",
  "id: 17",
  "event: message",
  'data: {"id":17,"text":"héllo ✓ 𝄞"}',
  "",
  "id: 18",
  "event: gap",
  "data: first line",
  "data:second line",
  "data",
  "",
  ": a comment between fields",
  "event: close",
  'data: {"reason":"server shutting down"}',
  "",
  "data: no final blank line yet",
].join("\n");

const EXPECTED: SseEvent[] = [
  { id: "17", event: "message", data: '{"id":17,"text":"héllo ✓ 𝄞"}' },
  { id: "18", event: "gap", data: "first line\nsecond line\n" },
  // The id stays the last one seen, as EventSource keeps it.
  { id: "18", event: "close", data: '{"reason":"server shutting down"}' },
];

/** Parses `bytes` cut at the given offsets, decoding as the client does (TextDecoder, stream: true). */
function parseInPieces(bytes: Uint8Array, cuts: number[]): SseEvent[] {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    events.push(...parser.push(decoder.decode(bytes.subarray(from, to), { stream: true })));
    from = to;
  }
  return events;
}

describe("SseParser", () => {
  for (const [ending, eol] of [
    ["LF", "\n"],
    ["CRLF", "\r\n"],
    ["CR", "\r"],
  ] as const) {
    it(`finds the same events whole and cut at every byte, twice (${ending} line endings)`, () => {
      const bytes = new TextEncoder().encode(STREAM.replaceAll("\n", eol));
      expect(parseInPieces(bytes, [])).toEqual(EXPECTED);
      for (let cut = 1; cut < bytes.length; cut++) {
        expect(parseInPieces(bytes, [cut]), `cut at ${cut}`).toEqual(EXPECTED);
        // A second cut right after the first: a chunk of one byte (a lone CR or LF among them).
        if (cut + 1 < bytes.length) expect(parseInPieces(bytes, [cut, cut + 1]), `cuts at ${cut}, ${cut + 1}`).toEqual(EXPECTED);
      }
    });
  }

  it("finds the same events fed one byte at a time", () => {
    const bytes = new TextEncoder().encode(STREAM.replaceAll("\n", "\r\n"));
    expect(parseInPieces(bytes, Array.from({ length: bytes.length - 1 }, (_, i) => i + 1))).toEqual(EXPECTED);
  });

  it("ignores a block without data and unknown fields, and keeps a colon-less line as a field", () => {
    const parser = new SseParser();
    expect(parser.push("event: join\n\nfoo: bar\nid\ndata: x\n\n")).toEqual([{ id: "", event: "message", data: "x" }]);
  });

  it("an LF that follows a CR at the end of the previous chunk ends no second line", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    // Were the LF taken as its own line, the event would end here already, with data "a".
    expect(parser.push("\ndata: b\r")).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ id: undefined, event: "message", data: "a\nb" }]);
  });
});
