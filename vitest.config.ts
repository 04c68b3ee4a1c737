import { configDefaults, defineConfig } from "vitest/config";

/** The suite: every test file but the fault test, which runs on its own (test/fault/vitest.config.ts, `npm run test:fault`). */
export default defineConfig({
  test: {
    exclude: [...configDefaults.exclude, "test/fault/**"],
  },
});
