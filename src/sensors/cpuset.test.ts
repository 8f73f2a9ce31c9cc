import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readPartitionCpus } from "./cpuset.ts";

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A root with the given files (relative path → content, in the kernel's format: list + "\n"). */
function tree(files: Record<string, string>): { cgroupfs: string; sysfs: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "weir-cpuset-"));
  tmpDirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return { cgroupfs: path.join(root, "cgroup"), sysfs: path.join(root, "sys") };
}

const ONLINE = "sys/devices/system/cpu/online";

describe("readPartitionCpus", () => {
  it("v1: the partition's cpuset.effective_cpus, intersected with the online CPUs", () => {
    const roots = tree({
      [ONLINE]: "0-3\n",
      "cgroup/cpuset/cpuset.effective_cpus": "0-3\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "1,3-5\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "1,3-5\n",
    });
    const file = path.join(roots.cgroupfs, "cpuset/weir/web/cpuset.effective_cpus");
    expect(readPartitionCpus(roots, "weir/web")).toEqual({
      cpus: [1, 3],
      source: `${file} ∩ ${path.join(roots.sysfs, "devices/system/cpu/online")}`,
    });
  });

  it("v1 without effective_cpus reads cpuset.cpus; an empty (unconfigured) cpuset is skipped", () => {
    const withCpus = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "1\n",
    });
    expect(readPartitionCpus(withCpus, "/weir/web/")?.cpus).toEqual([1]);
    const empty = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "\n",
    });
    expect(readPartitionCpus(empty, "weir/web")).toEqual({
      cpus: [0, 1],
      source: path.join(empty.sysfs, "devices/system/cpu/online"),
    });
  });

  it("v2: the partition's cpuset.cpus.effective, else its nearest ancestor's", () => {
    const own = tree({
      [ONLINE]: "0-7\n",
      "cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "cgroup/cpuset.cpus.effective": "0-7\n",
      "cgroup/weir/cpuset.cpus.effective": "2-5\n",
      "cgroup/weir/web/cpuset.cpus.effective": "4-5\n",
    });
    expect(readPartitionCpus(own, "weir/web")?.cpus).toEqual([4, 5]);
    const inherited = tree({
      [ONLINE]: "0-7\n",
      "cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "cgroup/cpuset.cpus.effective": "0-7\n",
      "cgroup/weir/cpuset.cpus.effective": "2-5\n",
      "cgroup/weir/web/cgroup.controllers": "cpu\n",
    });
    expect(readPartitionCpus(inherited, "weir/web")?.source).toBe(
      `${path.join(inherited.cgroupfs, "weir/cpuset.cpus.effective")} ∩ ${path.join(inherited.sysfs, "devices/system/cpu/online")}`,
    );
    expect(readPartitionCpus(inherited, "weir/web")?.cpus).toEqual([2, 3, 4, 5]);
  });

  it("a hybrid host whose cgroup2 has no cpuset (this host) falls back to the online CPUs", () => {
    const roots = tree({
      [ONLINE]: "0-1\n",
      "cgroup/unified/cgroup.controllers": "hugetlb\n",
      "cgroup/unified/weir/web/cgroup.controllers": "\n",
      "cgroup/cpu/weir/web/cpu.shares": "1024\n",
    });
    expect(readPartitionCpus(roots, "weir/web")).toEqual({
      cpus: [0, 1],
      source: path.join(roots.sysfs, "devices/system/cpu/online"),
    });
  });

  it("a malformed cpuset file is skipped; nothing readable at all gives null, never a throw", () => {
    const bad = tree({
      [ONLINE]: "0-1\n",
      "cgroup/cpuset/weir/web/cpuset.effective_cpus": "garbage\n",
      "cgroup/cpuset/weir/web/cpuset.cpus": "0\n",
    });
    expect(readPartitionCpus(bad, "weir/web")?.cpus).toEqual([0]);
    expect(readPartitionCpus(tree({}), "weir/web")).toBeNull();
    expect(readPartitionCpus(tree({ [ONLINE]: "0\n" }), "../escape")?.cpus).toEqual([0]);
  });
});
