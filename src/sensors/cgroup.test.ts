import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  cpuCounterFiles,
  detectCgroupLayout,
  HeldCgroupCpuCounters,
  normalizeCgroupPath,
  readCgroupCpuCounters,
} from "./cgroup.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
const v1 = path.join(FIX, "v1/cgroup");
const v2 = path.join(FIX, "v2/cgroup");
const hybrid = path.join(FIX, "hybrid/cgroup");

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
/** A writable copy of a fixture tree. */
function copyTree(src: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-cg-"));
  tmpDirs.push(d);
  fs.cpSync(src, d, { recursive: true });
  return d;
}

describe("detectCgroupLayout", () => {
  it("v1: cpu and cpuacct hierarchies", () => {
    expect(detectCgroupLayout(v1, "weir/web")).toEqual({
      version: 1,
      cpuDir: path.join(v1, "cpu/weir/web"),
      cpuacctDir: path.join(v1, "cpuacct/weir/web"),
    });
  });
  it("v2 at the root", () => {
    expect(detectCgroupLayout(v2, "/weir/web/")).toEqual({
      version: 2,
      dir: path.join(v2, "weir/web"),
    });
  });
  it("v2 at unified/ on a hybrid host", () => {
    expect(detectCgroupLayout(hybrid, "weir/web")).toEqual({
      version: 2,
      dir: path.join(hybrid, "unified/weir/web"),
    });
  });
  it("a path nowhere is CGROUP_GONE, terminal, naming the path", () => {
    for (const root of [v1, v2, hybrid]) {
      try {
        detectCgroupLayout(root, "weir/nope");
        expect.unreachable();
      } catch (e) {
        expect((e as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
        expect((e as WeirError).retryable).toBe(false);
        expect((e as WeirError).message).toContain('"weir/nope"');
      }
    }
  });
  it("v1 in cpu but not cpuacct says which hierarchy is missing", () => {
    const root = copyTree(v1);
    fs.rmSync(path.join(root, "cpuacct/weir/web"), { recursive: true });
    try {
      detectCgroupLayout(root, "weir/web");
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
      expect((e as WeirError).message).toContain("needs both the cpu and the cpuacct hierarchy");
    }
  });
  it("rejects '..' so a path cannot leave the root", () => {
    expect(() => normalizeCgroupPath("weir/../../etc")).toThrow(WeirError);
    expect(normalizeCgroupPath("./weir//web/")).toBe("weir/web");
  });
  it("lists the files a sample reads", () => {
    expect(cpuCounterFiles(detectCgroupLayout(v1, "weir/web"))).toEqual([
      path.join(v1, "cpuacct/weir/web/cpuacct.usage"),
      path.join(v1, "cpu/weir/web/cpu.stat"),
    ]);
    expect(cpuCounterFiles(detectCgroupLayout(v2, "weir/web"))).toEqual([
      path.join(v2, "weir/web/cpu.stat"),
    ]);
  });
});

describe("HeldCgroupCpuCounters", () => {
  it("v1: usage from cpuacct.usage (ns), throttling from cpu.stat", () => {
    expect(readCgroupCpuCounters(v1, "weir/web")).toEqual({
      usageNs: 48213377812,
      nrPeriods: 5120,
      nrThrottled: 312,
      throttledNs: 18734562210,
    });
  });
  it("v2: everything from cpu.stat, usec -> ns", () => {
    expect(readCgroupCpuCounters(v2, "weir/web")).toEqual({
      usageNs: 8330232000,
      nrPeriods: 120,
      nrThrottled: 37,
      throttledNs: 1542211000,
    });
  });
  it("hybrid unified/: usage without throttling", () => {
    expect(readCgroupCpuCounters(hybrid, "weir/web").usageNs).toBe(105226596000);
  });
  it("re-reads on held descriptors and reports malformed content with path and text", () => {
    const root = copyTree(v1);
    const c = new HeldCgroupCpuCounters(root, "weir/web");
    const usage = path.join(root, "cpuacct/weir/web/cpuacct.usage");
    fs.writeFileSync(usage, "48213377813\n");
    expect(c.read().usageNs).toBe(48213377813);
    fs.writeFileSync(usage, "garbage\n");
    try {
      c.read();
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.COUNTER_MALFORMED);
      expect((e as WeirError).message).toContain(usage);
      expect((e as WeirError).message).toContain('"garbage\\n"');
    }
    c.close();
  });
  it("a cgroup whose cpu.stat vanished before open is CGROUP_GONE", () => {
    const root = copyTree(v2);
    const layout = detectCgroupLayout(root, "weir/web");
    fs.rmSync(path.join(root, "weir/web/cpu.stat"));
    expect(() => new HeldCgroupCpuCounters(root, "weir/web", layout)).toThrow(
      expect.objectContaining({ code: ErrorCodes.CGROUP_GONE }),
    );
  });
});
