#!/usr/bin/env node
// node test/bench/profile-summary.js FILE.cpuprofile [TOP]
// Prints where a `node --cpu-prof` profile spent its time: self time per
// function, and total (inclusive) time per pollchat source file.
import { readFileSync } from "node:fs";

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: node test/bench/profile-summary.js FILE.cpuprofile [TOP]\n");
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
const deltas = profile.timeDeltas;
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const label = (n) => {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules|test)\//, "$1/").replace(/^node:/, "node:")}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"} ${where}`.trim();
};

const self = new Map();
for (const [id, us] of selfUs) {
  const key = label(byId.get(id));
  self.set(key, (self.get(key) ?? 0) + us);
}

// Inclusive time per pollchat file: each sample counted once per file on its stack.
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const files = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const url = byId.get(at).callFrame.url;
    const m = /\/dist\/(.+\.js)$/.exec(url);
    if (m) files.add(m[1]);
  }
  for (const f of files) inclusive.set(f, (inclusive.get(f) ?? 0) + us);
}

const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n\nself time:\n`);
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
process.stdout.write(`\ninclusive time per dist/ file:\n`);
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1])) process.stdout.write(`${pct(us)}  ${k}\n`);
