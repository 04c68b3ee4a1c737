// The bench's tables: every figure of pollchat (per path) beside the baseline's,
// as medians of the runs and their ratio, and issue 14's goals met or missed.
// Pure, so bench-tools.test.js can check it with made-up runs.
import { median } from "./median.js";

/** A figure over several runs: the median of numbers; for text (lost / dup / out-of-order), each different value once. */
export function combine(values) {
  if (values.length > 0 && values.every((v) => typeof v === "number")) return median(values);
  return [...new Set(values.map(String))].join("; ");
}

const PATH_TITLE = { seed: "pollchat seed `/`", api: "pollchat `/api/poll`" };

const fmt = (v, digits) =>
  typeof v === "string"
    ? v
    : v === undefined || v === null || Number.isNaN(v)
      ? "—"
      : v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const wait = (w) => (Number.isFinite(w) ? `${Math.round(w * 100)}%${w >= 0.1 ? " ⚠" : ""}` : "—");
const pct = (u) => (u === undefined || u === null || Number.isNaN(u) ? "—" : `${Math.round(u * 100)}%${u >= 0.9 ? " ⚠" : ""}`);
const times = (ratio) => (Number.isFinite(ratio) ? `${fmt(ratio, 2)}×` : "—");
const goalText = (r) => `${r.better === "higher" ? "≥" : "≤"} ${fmt(r.target, 1)}×`;

export class Report {
  rows = [];

  /**
   * One row per pollchat path in `results` ({ seed?: runs, api?: runs, baseline: runs },
   * runs in the order they ran). `better` says which way is good; `target` is
   * the ratio (pollchat / baseline) the issue asks for, `goal` the name of
   * that figure in the goals table.
   */
  add(scenario, metric, results, value, { unit = "", better = "higher", target, goal, digits = 0 } = {}) {
    const b = results.baseline;
    for (const path of Object.keys(results)) {
      if (path === "baseline") continue;
      const p = results[path];
      const na = p.find((r) => r.na)?.na;
      const pv = na ? NaN : combine(p.map(value));
      const bv = combine(b.map(value));
      const ratio = typeof pv === "number" && typeof bv === "number" ? pv / bv : NaN;
      const runRatios = na ? [] : p.map((r, i) => value(r) / value(b[i])).filter((x) => typeof x === "number" && Number.isFinite(x));
      let verdict = "";
      if (target !== undefined && Number.isFinite(ratio)) verdict = (better === "higher" ? ratio >= target : ratio <= target) ? "met" : "missed";
      const cpuOf = (r) => r.cpu?.serverUtil ?? r.serverCpuUtil;
      this.rows.push({
        scenario,
        metric,
        path,
        unit,
        pollchat: na ? `n/a (${na})` : pv,
        baseline: bv,
        ratio: Number.isFinite(ratio) ? Math.round(ratio * 100) / 100 : null,
        runRatios: runRatios.map((x) => Math.round(x * 100) / 100),
        better,
        target: target ?? null,
        goal: goal ?? null,
        verdict,
        digits,
        serverCpu: [median(p.map(cpuOf)), median(b.map(cpuOf))],
        generatorCpu: [median(p.map((r) => r.cpu?.util)), median(b.map((r) => r.cpu?.util))],
        // Largest share of a phase any process of any run waited for its core: how busy the machine was.
        contention: Math.max(
          ...[...p, ...b].flatMap((r) => [r.cpu?.serverWait ?? r.serverWait, r.cpu?.wait]).filter(Number.isFinite),
        ),
      });
    }
  }

  /** Every row as markdown; with several runs, each run's ratio too. */
  table() {
    const several = this.rows.some((r) => r.runRatios.length > 1);
    const out = [
      `| scenario | metric | path | pollchat | baseline | ratio |${several ? " ratio per run |" : ""} target | server CPU p / b | generator CPU p / b | run-queue wait |`,
      `| --- | --- | --- | ---: | ---: | ---: |${several ? " --- |" : ""} --- | --- | --- | ---: |`,
    ];
    for (const r of this.rows) {
      const unit = r.unit ? ` (${r.unit})` : "";
      const target = r.target === null ? "" : `${goalText(r)} ${r.verdict}`;
      const perRun = several ? ` ${r.runRatios.map((x) => fmt(x, 2)).join(", ")} |` : "";
      out.push(
        `| ${r.scenario} | ${r.metric}${unit} | ${r.path} | ${fmt(r.pollchat, r.digits)} | ${fmt(r.baseline, r.digits)} | ${fmt(r.ratio, 2)} |${perRun} ${target} | ${pct(r.serverCpu[0])} / ${pct(r.serverCpu[1])} | ${pct(r.generatorCpu[0])} / ${pct(r.generatorCpu[1])} | ${wait(r.contention)} |`,
      );
    }
    return out.join("\n");
  }

  /** Rows with a target that missed it. */
  misses() {
    return this.rows.filter((r) => r.verdict === "missed");
  }

  /** Issue 14's table: one line per goal, one column per path, the ratio and met or missed; then the misses. */
  goals() {
    const withGoal = this.rows.filter((r) => r.goal !== null);
    if (withGoal.length === 0) return "";
    const paths = [...new Set(withGoal.map((r) => r.path))];
    const goals = [...new Set(withGoal.map((r) => r.goal))];
    const out = [`| figure, ×baseline | ${paths.map((p) => PATH_TITLE[p] ?? p).join(" | ")} | goal |`, `| --- |${paths.map(() => " ---: |").join("")} --- |`];
    for (const goal of goals) {
      const cells = paths.map((path) => {
        const r = withGoal.find((x) => x.goal === goal && x.path === path);
        return r === undefined ? "" : `${times(r.ratio)} ${r.verdict || "(no figure)"}`;
      });
      out.push(`| ${goal} | ${cells.join(" | ")} | ${goalText(withGoal.find((x) => x.goal === goal))} |`);
    }
    const missed = this.misses();
    out.push(
      "",
      missed.length === 0
        ? "Every goal measured here was met."
        : `Missed (${missed.length}):\n${missed.map((r) => `- ${r.goal ?? `${r.scenario} ${r.metric}`} on ${PATH_TITLE[r.path] ?? r.path}: ${times(r.ratio)}, goal ${goalText(r)}`).join("\n")}`,
    );
    return out.join("\n");
  }
}
