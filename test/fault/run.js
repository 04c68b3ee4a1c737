#!/usr/bin/env node
// npm run test:fault -- [--seed N] [--duration S] [vitest arguments…]
//
// Runs the fault test (test/fault/, README "The fault test") with its own vitest config.
// --seed N replays the nemesis's and the clients' choices of that seed (default 19, CI's);
// --duration S repeats fault cycles until S seconds have passed (default: one cycle, about
// two minutes). Every other argument goes to vitest (a reporter, an output file).
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const env = { ...process.env };
const rest = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const [flag, inline] = args[i].split("=", 2);
  if (flag !== "--seed" && flag !== "--duration") {
    rest.push(args[i]);
    continue;
  }
  const value = inline ?? args[++i];
  if (value === undefined || !/^\d+$/.test(value)) {
    console.error(`${flag} takes a whole number, not ${value ?? "nothing"}`);
    process.exit(2);
  }
  env[flag === "--seed" ? "FAULT_SEED" : "FAULT_DURATION"] = value;
}
const vitest = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const child = spawn(process.execPath, [vitest, "run", "-c", join(ROOT, "test", "fault", "vitest.config.ts"), ...rest], {
  cwd: ROOT,
  env,
  stdio: "inherit",
});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => child.kill(s));
