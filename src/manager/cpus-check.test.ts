import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PartitionSpec } from "../core/model.ts";
import {
  checkPartitionCpus,
  configCpusShortfalls,
  cpusShortfalls,
  formatCpuList,
  foundPartitionCpus,
} from "./cpus-check.ts";
import { type KilledPlacementTree, killedPlacementTree } from "./test-cgroup-tree.ts";

const spec = (id: string, maxCpuMillis: number): PartitionSpec => ({
  id,
  minCpuMillis: 0,
  maxCpuMillis,
  weight: 100,
  importance: 3,
  kind: "network",
});

describe("formatCpuList", () => {
  it("writes ranges the way the kernel does", () => {
    expect(formatCpuList([0, 1, 2, 3, 5])).toBe("0-3,5");
    expect(formatCpuList([1])).toBe("1");
    expect(formatCpuList([0, 2, 4, 5])).toBe("0,2,4-5");
    expect(formatCpuList([])).toBe("");
  });
});

describe("cpusShortfalls", () => {
  const online = { cpus: [0, 1], source: "/sys/devices/system/cpu/online" };

  it("warns when capacity.cpus says more CPUs than the partition can run on", () => {
    // capacity.cpus: 4 on this 2-CPU host: 4000m capacity, 2 CPUs = 2000m
    const [w, ...rest] = cpusShortfalls([spec("web", 4000)], new Map([["web", online]]), 4000);
    expect(rest).toEqual([]);
    expect(w).toEqual({
      partition: "web",
      cpus: [0, 1],
      cpusSource: "/sys/devices/system/cpu/online",
      cpusCpuMillis: 2000,
      capacityCpuMillis: 4000,
      maxCpuMillis: 4000,
      message:
        "web: runs on CPUs 0-1 (2000m, from /sys/devices/system/cpu/online) but may be entitled " +
        "up to the capacity 4000m: an entitlement above 2000m cannot be used (lower " +
        "capacity.cpus or the partition's max, or widen its cpuset)",
    });
  });

  it("a cpuset of one CPU under a 2000m capacity; a max that fits the CPUs is not warned", () => {
    const cpuset = { cpus: [1], source: "/sys/fs/cgroup/cpuset/weir/web/cpuset.effective_cpus" };
    const out = cpusShortfalls(
      [spec("web", 1500), spec("dns", 1000), spec("batch", 2000), spec("new", 2000)],
      new Map([
        ["web", cpuset],
        ["dns", cpuset],
        ["batch", online],
        ["new", null],
      ]),
      2000,
    );
    // web: max 1500m > 1 CPU = 1000m; dns: max 1000m fits; batch: 2000m on 2 CPUs fits;
    // new: CPUs unknown, nothing said
    expect(out.map((w) => w.partition)).toEqual(["web"]);
    expect(out[0]!.message).toBe(
      "web: runs on CPUs 1 (1000m, from /sys/fs/cgroup/cpuset/weir/web/cpuset.effective_cpus) " +
        "but may be entitled up to its max 1500m (capacity 2000m): an entitlement above 1000m " +
        "cannot be used (lower capacity.cpus or the partition's max, or widen its cpuset)",
    );
  });

  it("a cpuset whose CPUs are all offline gives 0m", () => {
    const [w] = cpusShortfalls(
      [spec("web", 2000)],
      new Map([["web", { cpus: [], source: "x ∩ online" }]]),
      2000,
    );
    expect(w?.cpusCpuMillis).toBe(0);
    expect(w?.message).toMatch(/^web: runs on no CPU \(0m, from x ∩ online\)/);
  });
});

describe("checkPartitionCpus", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it("reads each partition's cpuset under the roots; unreadable roots give no warning and no throw", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-cpus-check-"));
    dirs.push(root);
    const write = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), text);
    };
    write("sys/devices/system/cpu/online", "0-1\n");
    write("cgroup/cpuset/weir/web/cpuset.effective_cpus", "1\n");
    const roots = { cgroupfs: path.join(root, "cgroup"), sysfs: path.join(root, "sys") };
    const partitions = [
      { name: "web", cgroup: "weir/web" },
      { name: "batch", cgroup: "weir/batch" },
    ];
    const specs = [spec("web", 2000), spec("batch", 2000)];
    const out = checkPartitionCpus(partitions, specs, 2000, roots);
    // web: cpuset {1} = 1000m < 2000m; batch: no cpuset, online 0-1 = 2000m fits
    expect(out.map((w) => [w.partition, w.cpusCpuMillis])).toEqual([["web", 1000]]);
    const nowhere = { cgroupfs: path.join(root, "none"), sysfs: path.join(root, "none") };
    expect(checkPartitionCpus(partitions, specs, 2000, nowhere)).toEqual([]);
  });
});

describe("checkPartitionCpus after a restart with placement in force", () => {
  const trees: KilledPlacementTree[] = [];
  afterEach(() => {
    for (const t of trees.splice(0)) t.remove();
  });

  /**
   * A cgroup v2 tree as a run SIGKILLed while placing p1 left it: weir/ has CPUs 0-3, p1's
   * cpuset.cpus was found empty (its parent's CPUs) and holds weir's placement, CPU 0.
   */
  function killedRun() {
    const tree = killedPlacementTree();
    trees.push(tree);
    return { roots: tree.roots, partitions: [{ name: "p1", cgroup: "weir/p1" }] };
  }

  it("judges the cpuset as found (the state file's), not weir's own narrowing of it", () => {
    // before: "p1: runs on CPUs 0 (1000m, ...) but may be entitled up to the capacity 4000m
    // ... widen its cpuset" at every restart after a kill, about weir's own placement
    const { roots, partitions } = killedRun();
    const specs = [spec("p1", 4000)];
    expect(checkPartitionCpus(partitions, specs, 4000, roots).map((w) => w.cpus)).toEqual([[0]]);
    expect(checkPartitionCpus(partitions, specs, 4000, roots, { p1: "" })).toEqual([]);
    expect(checkPartitionCpus(partitions, specs, 4000, roots, { p1: "0-3" })).toEqual([]);
  });

  it("still warns when the cpuset as found gives less than the partition may be entitled to", () => {
    const { roots, partitions } = killedRun();
    // found 0-1: 2000m, less than the 4000m capacity
    const [w] = checkPartitionCpus(partitions, [spec("p1", 4000)], 4000, roots, { p1: "0-1" });
    expect(w?.cpus).toEqual([0, 1]);
    expect(w?.message).toMatch(
      /^p1: runs on CPUs 0-1 \(2000m, from cpuset\.cpus "0-1" as found before weir placed it \(state file\) ∩ .*weir\/cpuset\.cpus\.effective ∩ .*online\)/,
    );
    // found empty under a capacity.cpus above the 4 CPUs: the parent's CPUs are judged
    const [e] = checkPartitionCpus(partitions, [spec("p1", 8000)], 8000, roots, { p1: "" });
    expect(e?.cpus).toEqual([0, 1, 2, 3]);
    expect(e?.cpusSource).toMatch(
      /weir\/cpuset\.cpus\.effective ∩ .*\(its cpuset\.cpus as found: empty\)$/,
    );
  });

  it("a found cpuset that is not wider than the cpuset now, or not a CPU list, changes nothing", () => {
    const { roots, partitions } = killedRun();
    const specs = [spec("p1", 4000)];
    // {2,3} does not hold CPU 0 (someone else set the cpuset since): the cpuset now is judged
    // ("0": the same; "zero": not a CPU list); another partition's found cpuset is not p1's
    const founds: Array<Record<string, string>> = [
      { p1: "2-3" },
      { p1: "0" },
      { p1: "zero" },
      { other: "" },
    ];
    for (const found of founds)
      expect(
        checkPartitionCpus(partitions, specs, 4000, roots, found).map((w) => w.cpus),
        JSON.stringify(found),
      ).toEqual([[0]]);
    expect(foundPartitionCpus(roots, "weir/p1", "zero")).toBeNull();
  });
});

describe("configCpusShortfalls (weir validate) with the state file's found cpusets", () => {
  it("judges the found cpuset of the partition's cgroup, by name only where the file has no cgroup", () => {
    // before: found cpusets went by name: a partition renamed on the same cgroup was warned
    // about weir's own placement, and one moved to another cgroup was judged by its old one's
    const tree = killedPlacementTree();
    try {
      const cfg = {
        roots: tree.roots,
        stateFile: tree.stateFile,
        partitions: [{ name: "p1", cgroup: "weir/p1" }],
      } as Parameters<typeof configCpusShortfalls>[0];
      const at = (foundCpusets: unknown) => {
        const state = JSON.parse(fs.readFileSync(tree.stateFile, "utf8")) as object;
        fs.writeFileSync(tree.stateFile, JSON.stringify({ ...state, foundCpusets }));
        return configCpusShortfalls(cfg, [spec("p1", 4000)], 4000).map((w) => w.cpus);
      };
      const onP1 = { cpus: "", cgroup: "weir/p1", actuator: "cgroup" };
      expect(at({ web: onP1 })).toEqual([]); // renamed: found on its cgroup
      expect(at({ p1: { ...onP1, cgroup: "weir/old" } })).toEqual([[0]]); // moved: not its cgroup's
      expect(at({ p1: "" })).toEqual([]); // an older weir's file: by name
    } finally {
      tree.remove();
    }
  });
});
