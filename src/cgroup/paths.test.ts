import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../core/errors.ts";
import type { CgroupLayout } from "./layout.ts";
import { cpusetFiles, findPartitionCgroup, locateCgroup, partitionCgroup } from "./paths.ts";

let root: string;
const file = (rel: string, text: string) => {
  mkdirSync(join(root, rel, ".."), { recursive: true });
  writeFileSync(join(root, rel), text);
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "weir-cgp-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("partitionCgroup: a partition's dirs per controller", () => {
  it("v2: one dir for everything, cgroup.threads", () => {
    const layout: CgroupLayout = { version: 2, root: "/cg" };
    expect(partitionCgroup(layout, "/weir/web/")).toEqual({
      version: 2,
      cpu: "/cg/weir/web",
      cpuacct: "/cg/weir/web",
      pressure: "/cg/weir/web",
      threadsFile: "/cg/weir/web/cgroup.threads",
    });
  });

  it("v1: cpu and cpuacct dirs, tasks; pressure only with a cgroup2 mount (hybrid)", () => {
    const v1: CgroupLayout = { version: 1, root: "/cg", cpu: "/cg/cpu", cpuacct: "/cg/cpuacct" };
    expect(partitionCgroup(v1, "weir/web")).toEqual({
      version: 1,
      cpu: "/cg/cpu/weir/web",
      cpuacct: "/cg/cpuacct/weir/web",
      pressure: null,
      threadsFile: "/cg/cpu/weir/web/tasks",
    });
    expect(partitionCgroup({ ...v1, unified: "/cg/unified" }, "weir/web").pressure).toBe(
      "/cg/unified/weir/web",
    );
  });
});

describe("findPartitionCgroup", () => {
  it("finds a v1 cgroup in both hierarchies, and says which one lacks it", () => {
    file("cpu/cpu.cfs_quota_us", "-1\n");
    file("cpuacct/cpuacct.usage", "1\n");
    file("cpu/weir/web/cpu.shares", "1024\n");
    expect(() => locateCgroup(root, "weir/web")).toThrow(
      /found .*cpu\/weir\/web but not .*cpuacct\/weir\/web: a v1 partition needs both/,
    );
    file("cpuacct/weir/web/cpuacct.usage", "1\n");
    expect(locateCgroup(root, "weir/web").cpuacct).toBe(join(root, "cpuacct/weir/web"));
  });

  it("a cgroup that is nowhere is CGROUP_GONE, terminal, naming the path", () => {
    file("cgroup.controllers", "cpu\n");
    const layout: CgroupLayout = { version: 2, root };
    expect(() => findPartitionCgroup(layout, "weir/nope")).toThrow(
      expect.objectContaining({ code: ErrorCodes.CGROUP_GONE, retryable: false }),
    );
    expect(() => findPartitionCgroup(layout, "weir/nope")).toThrow(/"weir\/nope"/);
  });
});

describe("cpusetFiles", () => {
  it("lists v2 (own, then ancestors up to the root) before v1", () => {
    file("cgroup.controllers", "cpuset cpu\n");
    file("weir/web/cgroup.controllers", "cpu\n");
    expect(cpusetFiles(root, "weir/web")).toEqual([
      join(root, "weir/web/cpuset.cpus.effective"),
      join(root, "weir/cpuset.cpus.effective"),
      join(root, "cpuset.cpus.effective"),
      join(root, "cpuset/weir/web/cpuset.effective_cpus"),
      join(root, "cpuset/weir/web/cpuset.cpus"),
    ]);
  });

  it("a hybrid host: the cgroup2 mount at unified/, then v1", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    file("unified/weir/web/cgroup.controllers", "\n");
    expect(cpusetFiles(root, "weir/web")).toEqual([
      join(root, "unified/weir/web/cpuset.cpus.effective"),
      join(root, "unified/weir/cpuset.cpus.effective"),
      join(root, "unified/cpuset.cpus.effective"),
      join(root, "cpuset/weir/web/cpuset.effective_cpus"),
      join(root, "cpuset/weir/web/cpuset.cpus"),
    ]);
  });
});
