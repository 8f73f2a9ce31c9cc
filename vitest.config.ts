import { defineConfig } from "vitest/config";

// Two projects: `unit` (tests beside the code and test/*.test.ts, parallel, no root needed) and
// `e2e` (test/e2e, real cgroups/namespaces/browser, run one file at a time so
// timing-sensitive checks do not fight each other on a 2-core machine).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "bench/**/*.test.ts", "test/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
