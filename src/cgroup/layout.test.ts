import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes, type WeirError } from "../core/errors.ts";
import {
  cgroup2Mount,
  cgroupDir,
  detectCgroupLayout,
  hasCpuController,
  normalizeCgroupPath,
} from "./layout.ts";
import { cgroupDirs, hierarchies } from "./paths.ts";

let root: string;
const file = (rel: string, text: string) => {
  mkdirSync(join(root, rel, ".."), { recursive: true });
  writeFileSync(join(root, rel), text);
};
/** The root files a v1 cpu and a v1 cpuacct hierarchy have (a kernel-exact subset). */
const v1Roots = () => {
  file("cpu/cpu.cfs_quota_us", "-1\n");
  file("cpuacct/cpuacct.usage", "123\n");
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "weir-cg-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("detectCgroupLayout: one order for the whole host", () => {
  it("v2 when the root is a cgroup2 mount", () => {
    file("cgroup.controllers", "cpuset cpu io memory pids\n");
    expect(detectCgroupLayout(root)).toEqual({ version: 2, root });
    expect(hasCpuController(detectCgroupLayout(root))).toBe(true);
  });

  it("v2 at the root even without the cpu controller listed (a container's delegated tree): hasCpuController says so", () => {
    file("cgroup.controllers", "memory pids\n");
    expect(detectCgroupLayout(root)).toEqual({ version: 2, root });
    expect(hasCpuController(detectCgroupLayout(root))).toBe(false);
  });

  it("v1 on a hybrid host whose cgroup2 mount lacks cpu (this host family): partitions also get a v2 dir (for cpu.pressure)", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    v1Roots();
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
    v1Roots();
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

  it("v2 at unified/ when only that mount has cpu (hybrid host, cpu given to cgroup2)", () => {
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

  it("no cpu controller at all is CGROUP_GONE, terminal, saying what it looked for", () => {
    file("unified/cgroup.controllers", "hugetlb\n");
    expect(() => detectCgroupLayout(root)).toThrow(/no cgroup cpu controller/);
    try {
      detectCgroupLayout(root);
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
      expect((e as WeirError).retryable).toBe(false);
    }
    file("cpu/cpu.cfs_quota_us", "-1\n");
    expect(() => detectCgroupLayout(root)).toThrow(/found .*cpu but not .*cpuacct: v1 needs both/);
  });
});

describe("cgroup2Mount", () => {
  it("the root, else unified/, else null", () => {
    expect(cgroup2Mount(root)).toBeNull();
    file("unified/cgroup.controllers", "hugetlb\n");
    expect(cgroup2Mount(root)).toBe(join(root, "unified"));
    file("cgroup.controllers", "cpu\n");
    expect(cgroup2Mount(root)).toBe(root);
  });
});

describe("cgroup paths", () => {
  it("normalizes, and refuses '..' so a path cannot leave the root", () => {
    expect(normalizeCgroupPath("./weir//web/")).toBe("weir/web");
    expect(() => normalizeCgroupPath("weir/../../etc")).toThrow(
      expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }),
    );
    expect(() => normalizeCgroupPath("weir/../../etc")).toThrow(/must stay under the cgroup root/);
    expect(cgroupDir("/r", "/weir/web/")).toBe("/r/weir/web");
    expect(cgroupDir("/r", "")).toBe("/r");
  });
});
