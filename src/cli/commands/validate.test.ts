// `weir validate` run as a user runs it (bin/weir.js from source), on a temporary cgroup v2 tree.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type KilledPlacementTree, killedPlacementTree } from "../../manager/test-cgroup-tree.ts";

const BIN = path.resolve(import.meta.dirname, "../../../bin/weir.js");
const weir = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, WEIR_FROM_SOURCE: "1" },
    timeout: 60_000,
  });

describe("weir validate after a run killed while placing", () => {
  const trees: KilledPlacementTree[] = [];
  afterEach(() => {
    for (const t of trees.splice(0)) t.remove();
  });

  /** The killed run's tree (p1 narrowed to CPU 0, found empty) and a config file on it. */
  function configOnKilledRun(mode: "spread" | "off"): { tree: KilledPlacementTree; file: string } {
    const tree = killedPlacementTree();
    trees.push(tree);
    return { tree, file: tree.configFile(mode) };
  }

  it("judges a placed partition's cpuset as the state file says it was found, and writes nothing", () => {
    // Before: "warning: p1: runs on CPUs 0 (1000m, ...) but may be entitled up to the capacity
    // 4000m ... widen its cpuset": validate read the cpuset as the killed run's placement left
    // it, though a start of `weir run` puts back what the state file says was found.
    for (const mode of ["spread", "off"] as const) {
      const { tree, file } = configOnKilledRun(mode);
      // a temporary file of a writer that no longer runs: loadState would remove it
      const stale = `${tree.stateFile}.tmp-999999999`;
      fs.writeFileSync(stale, "{}");
      const r = weir("validate", "-c", file);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(": valid. capacity 4000m");
      expect(r.stdout, mode).not.toContain("warning:");
      expect(tree.cpusetOfP1()).toBe("0\n");
      expect(fs.existsSync(stale)).toBe(true);
    }
  }, 120_000);

  it("still warns about the cpuset now without a state file, and about a real shortfall as found", () => {
    const { tree, file } = configOnKilledRun("spread");
    fs.rmSync(tree.stateFile);
    const none = weir("validate", "-c", file);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/warning: p1: runs on CPUs 0 \(1000m, /);
    // found 0-1: 2000m, less than the 4000m capacity
    tree.writeState({ p1: "0-1" });
    const found = weir("validate", "-c", file);
    expect(found.status, found.stderr).toBe(0);
    expect(found.stdout).toMatch(
      /warning: p1: runs on CPUs 0-1 \(2000m, from cpuset\.cpus "0-1" as found before weir placed it \(state file\)/,
    );
  }, 120_000);
});
