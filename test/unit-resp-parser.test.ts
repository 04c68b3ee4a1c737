import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RedisReplyError, RespProtocolError } from "../src/redis/redis-errors.js";
import { encodeCommand } from "../src/redis/resp-encode.js";
import type { RespLimits } from "../src/redis/resp-limits.js";
import { RespParser } from "../src/redis/resp-parser.js";
import type { RespReply } from "../src/redis/resp-reply.js";

/** The RESP2 reply parser (issue 12): replies split anywhere, hostile replies refused with bounded memory. */

/** A reply in a form toEqual compares exactly: bulks as hex, integers as decimal text, errors by message. */
type Plain = null | { simple: string } | { error: string } | { int: string } | { bulk: string } | Plain[];

function plain(reply: RespReply): Plain {
  if (reply === null) return null;
  if (Array.isArray(reply)) return reply.map(plain);
  if (Buffer.isBuffer(reply)) return { bulk: reply.toString("hex") };
  if (reply instanceof RedisReplyError) return { error: reply.message };
  if (typeof reply === "string") return { simple: reply };
  return { int: BigInt(reply).toString() };
}

/** A reference encoder for replies (the source only encodes commands). */
function encode(value: Plain): Buffer {
  if (value === null) return Buffer.from("$-1\r\n");
  if (Array.isArray(value)) return Buffer.concat([Buffer.from(`*${value.length}\r\n`), ...value.map(encode)]);
  if ("simple" in value) return Buffer.from(`+${value.simple}\r\n`);
  if ("error" in value) return Buffer.from(`-${value.error}\r\n`);
  if ("int" in value) return Buffer.from(`:${value.int}\r\n`);
  const bytes = Buffer.from(value.bulk, "hex");
  return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n")]);
}

/** Parses the pieces in order, returning every reply. */
function parse(pieces: Buffer[], limits: Partial<RespLimits> = {}): Plain[] {
  const parser = new RespParser(limits);
  const out: Plain[] = [];
  for (const piece of pieces) parser.push(piece, (reply) => out.push(plain(reply)));
  expect(parser.buffered).toBe(0);
  return out;
}

function hex(text: string): string {
  return Buffer.from(text, "binary").toString("hex");
}

const CORPUS: [string, Plain][] = [
  ["+OK\r\n", { simple: "OK" }],
  ["+\r\n", { simple: "" }],
  ["-ERR unknown command 'FOO'\r\n", { error: "ERR unknown command 'FOO'" }],
  ["-NOSCRIPT No matching script. Please use EVAL.\r\n", { error: "NOSCRIPT No matching script. Please use EVAL." }],
  [":0\r\n", { int: "0" }],
  [":-42\r\n", { int: "-42" }],
  [":9007199254740993\r\n", { int: "9007199254740993" }],
  [":-9223372036854775808\r\n", { int: "-9223372036854775808" }],
  ["$0\r\n\r\n", { bulk: "" }],
  ["$-1\r\n", null],
  ["*-1\r\n", null],
  ["*0\r\n", []],
  ["$6\r\nfoo\r\nb\r\n", { bulk: hex("foo\r\nb") }],
  ["$4\r\n\x00\xff\r\x0a\r\n", { bulk: "00ff0d0a" }],
  [
    "*2\r\n$1\r\na\r\n*3\r\n:1\r\n*0\r\n*2\r\n$-1\r\n-WRONGTYPE nope\r\n",
    [{ bulk: hex("a") }, [{ int: "1" }, [], [null, { error: "WRONGTYPE nope" }]]],
  ],
  // An XREAD reply: [[stream, [[id, [field, value]]]]].
  [
    "*1\r\n*2\r\n$10\r\npollchat:l\r\n*2\r\n*2\r\n$5\r\n1-0-0\r\n*2\r\n$1\r\nr\r\n$3\r\nabc\r\n*2\r\n$3\r\n2-0\r\n*0\r\n",
    [[{ bulk: hex("pollchat:l") }, [[{ bulk: hex("1-0-0") }, [{ bulk: hex("r") }, { bulk: hex("abc") }]], [{ bulk: hex("2-0") }, []]]]],
  ],
];

describe("RESP2 parser: well-formed replies", () => {
  it("parses each reply of the corpus, whole", () => {
    for (const [wire, expected] of CORPUS) expect(parse([Buffer.from(wire, "binary")])).toEqual([expected]);
  });

  it("parses the whole corpus split at every byte, and fed one byte at a time", () => {
    const all = Buffer.concat(CORPUS.map(([wire]) => Buffer.from(wire, "binary")));
    const expected = CORPUS.map(([, value]) => value);
    for (let at = 0; at <= all.length; at++) {
      expect(parse([all.subarray(0, at), all.subarray(at)])).toEqual(expected);
    }
    const bytes = [...all].map((b) => Buffer.from([b]));
    expect(parse(bytes)).toEqual(expected);
  });

  it("parses each reply split at every pair of points", () => {
    for (const [wire, expected] of CORPUS) {
      const all = Buffer.from(wire, "binary");
      for (let a = 0; a <= all.length; a++) {
        for (let b = a; b <= all.length; b++) {
          expect(parse([all.subarray(0, a), all.subarray(a, b), all.subarray(b)])).toEqual([expected]);
        }
      }
    }
  });

  it("keeps a large bulk string arriving in small chunks as pieces, and copies small ones out of the chunk", () => {
    const payload = Buffer.alloc(300_000, 7);
    const wire = Buffer.concat([Buffer.from(`$${payload.length}\r\n`), payload, Buffer.from("\r\n+OK\r\n")]);
    const parser = new RespParser();
    const out: RespReply[] = [];
    for (let at = 0; at < wire.length; at += 1000) parser.push(wire.subarray(at, at + 1000), (r) => out.push(r));
    expect(out).toHaveLength(2);
    expect((out[0] as Buffer).equals(payload)).toBe(true);
    expect(out[1]).toBe("OK");
    const chunk = Buffer.from("$3\r\nabc\r\n");
    new RespParser().push(chunk, (r) => out.push(r));
    chunk.fill(0); // the socket's buffer reused: the reply is a copy
    expect((out[2] as Buffer).toString()).toBe("abc");
  });

  it("gives integers as numbers, and as bigints past 2^53", () => {
    const out: RespReply[] = [];
    new RespParser().push(Buffer.from(":12\r\n:-0\r\n:9223372036854775807\r\n"), (r) => out.push(r));
    expect(out).toEqual([12, 0, 9223372036854775807n]);
  });

  it("gives an error reply its code", () => {
    const out: RespReply[] = [];
    new RespParser().push(Buffer.from("-NOSCRIPT No matching script\r\n-LOADING\r\n"), (r) => out.push(r));
    expect(out.map((e) => (e as RedisReplyError).code)).toEqual(["NOSCRIPT", "LOADING"]);
  });
});

describe("RESP2 parser: hostile replies", () => {
  const small: Partial<RespLimits> = { maxBulkBytes: 100, maxReplyBytes: 1000, maxElements: 10, maxDepth: 3, maxLineBytes: 50 };
  const HOSTILE: [string, string, Partial<RespLimits>?][] = [
    ["!OK\r\n", "type byte 0x21"],
    ["_\r\n", "type byte 0x5f"], // RESP3 null
    ["%1\r\n", "type byte 0x25"], // RESP3 map
    ["\r\n", "type byte 0x0d"],
    ["+OK\n", "CRLF"],
    ["+\n", "CRLF"],
    ["$-2\r\n", "bad bulk length"],
    ["$abc\r\n", "bad bulk length"],
    ["$\r\n", "bad bulk length"],
    ["$+3\r\nabc\r\n", "bad bulk length"],
    ["$3\r\nabcXY", "not ended by CRLF"],
    ["$3\r\nabc\r", ""], // incomplete, not wrong: see below
    ["*-5\r\n", "bad array length"],
    ["*1x\r\n", "bad array length"],
    ["*99999999999\r\n", "bad array length"],
    [":12a\r\n", "bad integer"],
    [":\r\n", "bad integer"],
    [":-\r\n", "bad integer"],
    [":1.5\r\n", "bad integer"],
    [":99999999999999999999\r\n", "bad integer"],
    [":9223372036854775808\r\n", "past 64 bits"],
    ["$536870913\r\n", "more than 536870912"],
    ["*1048577\r\n", "more than 1048576 elements"],
    ["$101\r\n", "more than 100", small],
    ["*11\r\n", "more than 10 elements", small],
    ["*5\r\n*6\r\n", "more than 10 elements", small],
    ["*1\r\n*1\r\n*1\r\n*1\r\n", "nested more than 3", small],
    ["*10\r\n" + ("$100\r\n" + "x".repeat(100) + "\r\n").repeat(10), "more than 1000 bytes", small],
    ["+" + "a".repeat(60), "longer than 50", small],
    ["+" + "a".repeat(60) + "\r\n", "longer than 50", small],
  ];

  for (const [wire, message, limits] of HOSTILE) {
    if (message === "") continue;
    it(`refuses ${JSON.stringify(wire.slice(0, 30))}, at once and split anywhere`, () => {
      const all = Buffer.from(wire, "binary");
      for (let at = 0; at <= all.length; at++) {
        const parser = new RespParser(limits);
        const replies: RespReply[] = [];
        const feed = (): void => {
          parser.push(all.subarray(0, at), (r) => replies.push(r));
          parser.push(all.subarray(at), (r) => replies.push(r));
        };
        expect(feed).toThrow(RespProtocolError);
        expect(feed).toThrow(message);
        expect(replies).toEqual([]);
        expect(parser.buffered).toBe(0);
        // Failed for good: the stream cannot be resynchronised.
        expect(() => parser.push(Buffer.from("+OK\r\n"), () => {})).toThrow(RespProtocolError);
      }
    });
  }

  it("waits for a bulk string's CRLF split off at its end, and refuses a wrong one", () => {
    const out: RespReply[] = [];
    const parser = new RespParser();
    parser.push(Buffer.from("$3\r\nabc\r"), (r) => out.push(r));
    expect(out).toEqual([]);
    parser.push(Buffer.from("\n"), (r) => out.push(r));
    expect(plain(out[0]!)).toEqual({ bulk: hex("abc") });
    const bad = new RespParser();
    bad.push(Buffer.from("$3\r\nabc\r"), () => {});
    expect(() => bad.push(Buffer.from("X"), () => {})).toThrow("not ended by CRLF");
  });

  it("refuses a line that never ends once it is past the cap, holding no more than that", () => {
    const parser = new RespParser({ maxLineBytes: 1024 });
    parser.push(Buffer.from("+"), () => {});
    let error: unknown;
    for (let i = 0; i < 100 && error === undefined; i++) {
      try {
        parser.push(Buffer.alloc(100, 97), () => {});
        expect(parser.buffered).toBeLessThanOrEqual(1024);
      } catch (e) {
        error = e;
      }
    }
    expect(error).toBeInstanceOf(RespProtocolError);
  });

  it("holds of an announced huge bulk only the bytes that arrived", () => {
    const parser = new RespParser();
    parser.push(Buffer.from("$500000000\r\n"), () => {});
    parser.push(Buffer.alloc(1000), () => {});
    expect(parser.buffered).toBe(1000);
  });

  it("does not preallocate an announced huge array", () => {
    const parser = new RespParser();
    const before = process.memoryUsage().heapUsed;
    parser.push(Buffer.from("*1000000\r\n"), () => {});
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(4 * 1024 * 1024);
  });

  it("rethrows a callback's error without losing its place", () => {
    const parser = new RespParser();
    const seen: RespReply[] = [];
    expect(() =>
      parser.push(Buffer.from("+A\r\n+B\r\n"), (r) => {
        seen.push(r);
        throw new Error("consumer");
      }),
    ).toThrow("consumer");
    expect(seen).toEqual(["A"]);
    parser.push(Buffer.alloc(0), (r) => seen.push(r));
    expect(seen).toEqual(["A", "B"]);
  });
});

describe("RESP2 parser: properties", () => {
  const line = fc.string({ maxLength: 20 }).filter((s) => !s.includes("\r") && !s.includes("\n"));
  const leaf: fc.Arbitrary<Plain> = fc.oneof(
    line.map((simple) => ({ simple })),
    line.map((error) => ({ error })),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => ({ int: n.toString() })),
    fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ bulk: Buffer.from(bytes).toString("hex") })),
    fc.constant(null),
  );
  const { tree } = fc.letrec<{ tree: Plain }>((tie) => ({
    tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.array(tie("tree"), { maxLength: 5 })),
  }));

  it("parses random reply trees, encoded and split at random points, to themselves", () => {
    fc.assert(
      fc.property(fc.array(tree, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (replies, cuts) => {
        const wire = Buffer.concat(replies.map(encode));
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let from = 0;
        for (const p of points) {
          pieces.push(wire.subarray(from, p));
          from = p;
        }
        pieces.push(wire.subarray(from));
        expect(parse(pieces)).toEqual(replies);
      }),
      { numRuns: 500 },
    );
  });

  it("meets random and mutated bytes with replies or a RespProtocolError, nothing else, holding no more than a cap", () => {
    const limits: Partial<RespLimits> = { maxLineBytes: 64, maxBulkBytes: 64, maxElements: 16, maxDepth: 4, maxReplyBytes: 256 };
    const mutated = fc.tuple(fc.array(tree, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([replies, at, byte]) => {
      const wire = Buffer.from(Buffer.concat(replies.map(encode)));
      wire[at % wire.length] = byte;
      return wire;
    });
    const bytes = fc.oneof(mutated, fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(bytes, fc.nat(), (wire, cut) => {
        const parser = new RespParser(limits);
        const at = cut % (wire.length + 1);
        try {
          parser.push(wire.subarray(0, at), () => {});
          parser.push(wire.subarray(at), () => {});
        } catch (error) {
          expect(error).toBeInstanceOf(RespProtocolError);
        }
        // A partial line of at most 64 bytes, or a partial bulk of at most 64 + CRLF; nothing once failed.
        expect(parser.buffered).toBeLessThanOrEqual(66);
      }),
      { numRuns: 2000 },
    );
  });

  it("reads back a command as encoded: an array of the same bytes", () => {
    const arg = fc.oneof(fc.string({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b)), fc.integer());
    fc.assert(
      fc.property(fc.array(arg, { minLength: 1, maxLength: 8 }), (args) => {
        const encoded = encodeCommand(args);
        const wire = typeof encoded === "string" ? Buffer.from(encoded) : encoded;
        const expected = args.map((a) => ({ bulk: (Buffer.isBuffer(a) ? a : Buffer.from(String(a))).toString("hex") }));
        expect(parse([wire])).toEqual([expected]);
      }),
    );
  });
});
