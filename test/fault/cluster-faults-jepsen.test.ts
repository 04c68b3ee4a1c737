import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../helpers.js";
import { CHECKS, type Category } from "./check-history.js";
import { FAULT_KINDS } from "./fault-nemesis.js";
import { runFaultTest, type FaultRunResult } from "./fault-run.js";

/**
 * The project's own Jepsen-style test (README, "The fault test"): three processes on one
 * Redis under a nemesis, a whole history recorded in memory and judged at the end, one test
 * per check. Seed and duration from FAULT_SEED / FAULT_DURATION (`npm run test:fault --
 * --seed N --duration S` sets them); CI runs the fixed seed, one cycle of every fault.
 */
const SEED = Number(process.env.FAULT_SEED ?? 19);
const DURATION_S = process.env.FAULT_DURATION === undefined ? undefined : Number(process.env.FAULT_DURATION);
/** One cycle takes about two minutes on a busy 2-core machine; the bound is far past it. */
const RUN_LIMIT_MS = ((DURATION_S ?? 150) + 480) * 1000;

let result: FaultRunResult | undefined;
let failure: unknown;

beforeAll(async () => {
  await ensureBuilt();
  try {
    result = await runFaultTest({ seed: SEED, durationS: DURATION_S, log: (line) => console.log(`[fault] ${line}`) });
    console.log(`[fault] ${result.summary}`);
    // FAULT_DUMP=file keeps the whole recorded history as JSON, to study a failure.
    if (process.env.FAULT_DUMP) writeFileSync(process.env.FAULT_DUMP, JSON.stringify(result.history));
    for (const [category, found] of result.violations)
      if (found.length > 0) console.log(`[fault] ${category}: ${found.length} violation(s)`);
  } catch (error) {
    failure = error;
  }
}, RUN_LIMIT_MS);

afterAll(() => {
  if (result !== undefined)
    console.log(`[fault] replay with: npm run test:fault -- --seed ${SEED}${DURATION_S === undefined ? "" : ` --duration ${DURATION_S}`}`);
});

/** The violations of one check, shown in full (up to 40) as the failure message. */
function report(category: Category): string {
  const found = result!.violations.get(category)!;
  const shown = found.slice(0, 40).map((v, i) => `  ${i + 1}. ${v}`);
  const more = found.length > 40 ? `\n  … and ${found.length - 40} more` : "";
  return `${found.length} violation(s) of "${CHECKS[category]}" (seed ${SEED}):\n${shown.join("\n")}${more}`;
}

describe(`fault test: 3 processes on one Redis under a nemesis (seed ${SEED})`, () => {
  it("the run itself: ran every fault kind and posted throughout", () => {
    expect(failure, String(failure instanceof Error ? failure.stack : failure)).toBeUndefined();
    const kinds = new Set(result!.history.faults.map((f) => f.kind));
    expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    expect(result!.history.answeredCount()).toBeGreaterThan(100);
    expect(result!.violations.get("harness"), report("harness")).toEqual([]);
  });

  for (const category of Object.keys(CHECKS) as Category[]) {
    if (category === "harness") continue;
    it(CHECKS[category], () => {
      expect(result, "the run failed: see the first test").toBeDefined();
      expect(result!.violations.get(category), report(category)).toEqual([]);
    });
  }
});
