// `weir run --once` run as a user runs it (bin/weir.js from source), on a temporary cgroup v2 tree.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { killedPlacementTree } from "../../manager/test-cgroup-tree.ts";

const BIN = path.resolve(import.meta.dirname, "../../../bin/weir.js");

describe("weir run --once after a run killed while placing", () => {
  it("does not warn that a placed partition's cpuset is narrow when the narrowing is weir's own", () => {
    // Before: "weir run: warning: p1: runs on CPUs 0 (1000m, ...) but may be entitled up to the
    // capacity 4000m ... widen its cpuset": --once judged the cpuset as the killed run's
    // placement left it, where startManager judges it as the state file says it was found.
    const tree = killedPlacementTree();
    try {
      const file = tree.configFile("spread");
      const r = spawnSync(process.execPath, [BIN, "run", "--once", "-c", file], {
        encoding: "utf8",
        env: { ...process.env, WEIR_FROM_SOURCE: "1" },
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^cycle 2: capacity 4000m/);
      expect(r.stderr).not.toMatch(/runs on CPU/);
    } finally {
      tree.remove();
    }
  }, 120_000);

  it("with placement off, says that it wrote the killed run's cpuset back", () => {
    // Before: --once wrote p1's cpuset back (buildManager) without a word; weir run logs it.
    const tree = killedPlacementTree();
    try {
      const file = tree.configFile("off");
      const r = spawnSync(process.execPath, [BIN, "run", "--once", "-c", file], {
        encoding: "utf8",
        env: { ...process.env, WEIR_FROM_SOURCE: "1" },
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(tree.cpusetOfP1()).toBe("\n");
      expect(r.stderr).toMatch(/^weir run: p1: .*cpuset/m);
    } finally {
      tree.remove();
    }
  }, 120_000);
});
