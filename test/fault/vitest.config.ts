import { defineConfig } from "vitest/config";

/** The fault test alone (README, "The fault test"): `npm run test:fault`. The default run leaves it out (vitest.config.ts). */
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/fault/**/*.test.ts"],
    // One history, judged by many tests: they share the run in one file, never in parallel with another suite.
    fileParallelism: false,
    testTimeout: 60_000,
  },
});
