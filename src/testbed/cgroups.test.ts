import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  cgroupDirs,
  cgroupProcs,
  detectCgroupLayout,
  enableCpuController,
  hierarchies,
  setGroupShares,
  weightFromShares,
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

describe("detectCgroupLayout (fixture trees)", () => {
  it("v2 when the root's cgroup.controllers lists cpu", () => {
    file("cgroup.controllers", "cpuset cpu io memory pids\n");
    expect(detectCgroupLayout(root)).toEqual({ version: 2, root });
  });

  it("v1 on a hybrid host whose cgroup2 mount lacks cpu (this host family): partitions also get a v2 dir (for cpu.pressure)", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    file("cpu/cpu.cfs_quota_us", "-1\n");
    file("cpuacct/cpuacct.usage", "123\n");
    const layout = detectCgroupLayout(root);
    expect(layout).toEqual({
      version: 1,
      root,
      cpu: join(root, "cpu"),
      cpuacct: join(root, "cpuacct"),
      unified: join(root, "unified"),
    });
    expect(cgroupDirs(layout, "weir/p1")).toEqual([
      join(root, "cpu/weir/p1"),
      join(root, "cpuacct/weir/p1"),
      join(root, "unified/weir/p1"),
    ]);
  });

  it("v1 without a cgroup2 mount: cpu and cpuacct only", () => {
    file("cpu/cpu.cfs_quota_us", "-1\n");
    file("cpuacct/cpuacct.usage", "123\n");
    const layout = detectCgroupLayout(root);
    expect(layout).toEqual({
      version: 1,
      root,
      cpu: join(root, "cpu"),
      cpuacct: join(root, "cpuacct"),
    });
    expect(cgroupDirs(layout, "weir/p1")).toEqual([
      join(root, "cpu/weir/p1"),
      join(root, "cpuacct/weir/p1"),
    ]);
  });

  it("v2 at unified/ when only that mount has cpu", () => {
    file("unified/cgroup.controllers", "cpu memory\n");
    expect(detectCgroupLayout(root)).toEqual({ version: 2, root: join(root, "unified") });
  });

  it("co-mounted cpu,cpuacct is one hierarchy", () => {
    file("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    file("cpu,cpuacct/cpuacct.usage", "0\n");
    symlinkSync(join(root, "cpu,cpuacct"), join(root, "cpu"));
    symlinkSync(join(root, "cpu,cpuacct"), join(root, "cpuacct"));
    expect(hierarchies(detectCgroupLayout(root))).toEqual([join(root, "cpu")]);
  });

  it("no cpu controller at all is an error that says what it looked for", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    expect(() => detectCgroupLayout(root)).toThrow(/no cgroup cpu controller/);
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
    expect([weightFromShares(1024), weightFromShares(2), weightFromShares(262_144)]).toEqual([
      100, 1, 10_000,
    ]);
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
