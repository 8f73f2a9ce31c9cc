import { defineConfig } from "vitest/config";

// Three projects: `unit` (tests beside the code and test/*.test.ts, parallel, no root needed),
// `e2e` (test/e2e, real cgroups/namespaces/browser) and `faults` (test/faults, named faults
// injected into a running weir on real kernel objects; writes RELIABILITY.md). The last two run
// one file at a time so timing-sensitive checks do not fight each other on a 2-core machine.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "src/**/*.test.ts",
            "bench/**/*.test.ts",
            "test/*.test.ts",
            "test/faults/reliability.test.ts",
          ],
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
      {
        test: {
          name: "faults",
          include: ["test/faults/**/*.faults.test.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
