import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../core/errors.ts";
import {
  cgroupProcs,
  detectTestbedLayout,
  enableCpuController,
  setGroupShares,
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
