import { describe, expect, it } from "vitest";
import { TipReads } from "../src/cluster/tip-reads.js";

/** Reads of the shared log's tip, shared among callers (cluster/tip-reads.ts). */

function manualReads(): { reads: TipReads; answer: (i: number, tip: string | Error) => void; sent: () => number } {
  const pending: { resolve: (tip: string) => void; reject: (error: Error) => void }[] = [];
  const reads = new TipReads(() => new Promise<string>((resolve, reject) => pending.push({ resolve, reject })));
  return {
    reads,
    answer: (i, tip) => (typeof tip === "string" ? pending[i]!.resolve(tip) : pending[i]!.reject(tip)),
    sent: () => pending.length,
  };
}

/** Lets every promise callback queued so far run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("shared reads of the tip", () => {
  it("callers that come while a read is under way share the next read, sent after it is answered, never the one asked before them", async () => {
    const { reads, answer, sent } = manualReads();
    const first = reads.tip();
    const later = [reads.tip(), reads.tip(), reads.tip()];
    expect(sent()).toBe(1);
    answer(0, "1-0");
    expect(await first).toBe("1-0");
    await settle();
    expect(sent()).toBe(2);
    answer(1, "2-0");
    expect(await Promise.all(later)).toEqual(["2-0", "2-0", "2-0"]);
    // Nothing under way: a caller reads at once.
    await settle();
    const alone = reads.tip();
    expect(sent()).toBe(3);
    answer(2, "3-0");
    expect(await alone).toBe("3-0");
  });

  it("a failed read fails its callers only; the next caller reads again", async () => {
    const { reads, answer, sent } = manualReads();
    const failing = reads.tip();
    const waiting = reads.tip();
    answer(0, new Error("link down"));
    await expect(failing).rejects.toThrow("link down");
    await settle();
    answer(1, "5-0");
    expect(await waiting).toBe("5-0");
    expect(sent()).toBe(2);
  });
});
