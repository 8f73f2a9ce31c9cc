import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../core/errors.ts";
import {
  cgroupProcs,
  detectTestbedLayout,
  enableController,
  enableCpuController,
  fillCpuset,
  setGroupShares,
  testbedCgroupDirs,
} from "./cgroups.ts";

let root: string;
const file = (rel: string, text: string) => {
  mkdirSync(join(root, rel, ".."), { recursive: true });
  writeFileSync(join(root, rel), text);
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "weir-cg-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("detectTestbedLayout", () => {
  it("the host's layout (src/cgroup) when it has a cpu controller", () => {
    file("cpu/cpu.cfs_quota_us", "-1\n");
    file("cpuacct/cpuacct.usage", "123\n");
    expect(detectTestbedLayout(root)).toMatchObject({ version: 1, cpu: join(root, "cpu") });
  });

  it("no cpu controller at all, or a cgroup2 root without it, is a TESTBED error", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    expect(() => detectTestbedLayout(root)).toThrow(/no cgroup cpu controller/);
    file("cgroup.controllers", "memory pids\n");
    expect(() => detectTestbedLayout(root)).toThrow(
      expect.objectContaining({ code: ErrorCodes.TESTBED }),
    );
  });
});

describe("cgroup files", () => {
  it("lists member pids", () => {
    file("cpu/weir/p1/cgroup.procs", "12\n345\n");
    expect(cgroupProcs(join(root, "cpu/weir/p1"))).toEqual([12, 345]);
    expect(cgroupProcs(join(root, "cpu/weir/missing"))).toEqual([]);
  });

  it("enables +cpu in subtree_control only when missing", () => {
    file("cgroup.subtree_control", "memory\n");
    enableCpuController(root);
    expect(readFileSync(join(root, "cgroup.subtree_control"), "utf8")).toBe("+cpu");
    file("cgroup.subtree_control", "cpu memory\n");
    enableCpuController(root);
    expect(readFileSync(join(root, "cgroup.subtree_control"), "utf8")).toBe("cpu memory\n");
  });

  it("sets the group's share: v1 cpu.shares, v2 cpu.weight (1024 shares = weight 100)", () => {
    file("cpu/weir/cpu.shares", "1024\n");
    setGroupShares(
      { version: 1, root, cpu: join(root, "cpu"), cpuacct: join(root, "cpuacct") },
      "weir",
      8192,
    );
    expect(readFileSync(join(root, "cpu/weir/cpu.shares"), "utf8")).toBe("8192");
    file("weir/cpu.weight", "100\n");
    setGroupShares({ version: 2, root }, "weir", 8192);
    expect(readFileSync(join(root, "weir/cpu.weight"), "utf8")).toBe("800");
    expect(() => setGroupShares({ version: 2, root }, "nope/deeper", 10)).toThrow(
      /cannot write 1 to/,
    );
  });
});

describe("the testbed's cpusets", () => {
  it("v1 with a cpuset hierarchy: a cgroup path is also made there; without one, or on v2, it is not", () => {
    file("cpu/cpu.cfs_quota_us", "-1\n");
    file("cpuacct/cpuacct.usage", "123\n");
    const layout = detectTestbedLayout(root);
    expect(testbedCgroupDirs(layout, "tb/a")).toEqual([
      join(root, "cpu", "tb", "a"),
      join(root, "cpuacct", "tb", "a"),
    ]);
    file("cpuset/cpuset.cpus", "0-1\n");
    expect(testbedCgroupDirs(layout, "/tb/a/")).toEqual([
      join(root, "cpu", "tb", "a"),
      join(root, "cpuacct", "tb", "a"),
      join(root, "cpuset", "tb", "a"),
    ]);
    expect(testbedCgroupDirs({ version: 2, root }, "tb/a")).toEqual([join(root, "tb", "a")]);
  });

  it("a new v1 cpuset gets its parent's CPUs and memory nodes; one that has them keeps them", () => {
    file("cpuset/cpuset.cpus", "0-3\n");
    file("cpuset/cpuset.mems", "0\n");
    file("cpuset/tb/cpuset.cpus", "\n");
    file("cpuset/tb/cpuset.mems", "\n");
    fillCpuset(join(root, "cpuset", "tb"));
    const read = (f: string) => readFileSync(join(root, "cpuset", "tb", f), "utf8");
    expect([read("cpuset.cpus"), read("cpuset.mems")]).toEqual(["0-3", "0"]);
    file("cpuset/tb/cpuset.cpus", "2\n");
    fillCpuset(join(root, "cpuset", "tb"));
    expect(read("cpuset.cpus")).toBe("2\n");
    // not a cpuset directory: nothing to fill
    mkdirSync(join(root, "cpu", "tb"), { recursive: true });
    fillCpuset(join(root, "cpu", "tb"));
    expect(existsSync(join(root, "cpu", "tb", "cpuset.cpus"))).toBe(false);
  });

  it("v2: a controller is enabled for the children once, and a refusal names the file", () => {
    file("tb/cgroup.subtree_control", "cpu\n");
    enableController(join(root, "tb"), "cpuset");
    expect(readFileSync(join(root, "tb", "cgroup.subtree_control"), "utf8")).toBe("+cpuset");
    writeFileSync(join(root, "tb", "cgroup.subtree_control"), "cpu cpuset\n");
    enableController(join(root, "tb"), "cpuset"); // already there: not written again
    expect(readFileSync(join(root, "tb", "cgroup.subtree_control"), "utf8")).toBe("cpu cpuset\n");
    expect(() => enableController(join(root, "none"), "cpuset")).toThrow(
      /cannot enable cpuset in .*none\/cgroup.subtree_control/,
    );
  });
});
