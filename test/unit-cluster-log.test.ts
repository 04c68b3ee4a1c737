import { describe, expect, it } from "vitest";
import { compareIds, msOf } from "../src/cluster/shared-log.js";
import { decodeRecord, encodeRecord } from "../src/cluster/commands.js";
import { MemoryLog } from "../src/cluster/memory-log.js";

describe("shared log ids and records", () => {
  it("orders stream ids by milliseconds, then sequence, numerically", () => {
    expect(compareIds("9-0", "10-0")).toBeLessThan(0);
    expect(compareIds("10-2", "10-10")).toBeLessThan(0);
    expect(compareIds("10-1", "10-1")).toBe(0);
    expect(compareIds("0-0", "1-0")).toBeLessThan(0);
    expect(msOf("1700000000123-7")).toBe(1700000000123);
  });

  it("decodes what it encodes, and skips what is no record", () => {
    const record = { c: { t: "post" as const, k: "tok", x: "hi" }, o: "p1", q: 3 };
    expect(decodeRecord(encodeRecord(record))).toEqual(record);
    for (const bad of ["", "null", "[]", '{"c":1}', '{"c":{"t":"drop"}}', '{"c":{"t":"post"},"o":5}', "{"]) expect(decodeRecord(bad)).toBeUndefined();
  });

  it("the memory log gives ids that never go back, even when its clock does", () => {
    let now = 1000;
    const log = new MemoryLog(() => now);
    log.append(["a", "b"]);
    now = 900;
    log.append(["c"]);
    now = 1001;
    log.append(["d"]);
    expect(log.entries.map((e) => e.id)).toEqual(["1000-0", "1000-1", "1000-2", "1001-0"]);
    expect(log.after("1000-1", 10).map((e) => e.data)).toEqual(["c", "d"]);
  });
});
