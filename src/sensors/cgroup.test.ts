import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { locateCgroup } from "../cgroup/paths.ts";
import { ErrorCodes, type WeirError } from "../core/errors.ts";
import { cpuCounterFiles, HeldCgroupCpuCounters, readCgroupCpuCounters } from "./cgroup.ts";

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

describe("where the counters are (the host's layout, src/cgroup)", () => {
  it("a path nowhere is CGROUP_GONE, terminal, naming the path", () => {
    for (const root of [v1, v2, hybrid]) {
      try {
        new HeldCgroupCpuCounters(root, "weir/nope");
        expect.unreachable();
      } catch (e) {
        expect((e as WeirError).code).toBe(ErrorCodes.CGROUP_GONE);
        expect((e as WeirError).retryable).toBe(false);
        expect((e as WeirError).message).toContain('"weir/nope"');
      }
    }
  });
  it("lists the files a sample reads", () => {
    expect(cpuCounterFiles(locateCgroup(v1, "weir/web"))).toEqual([
      path.join(v1, "cpuacct/weir/web/cpuacct.usage"),
      path.join(v1, "cpu/weir/web/cpu.stat"),
    ]);
    expect(cpuCounterFiles(locateCgroup(v2, "weir/web"))).toEqual([
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
  it("hybrid (v1 cpu + cpuacct, cgroup2 at unified/ without cpu): the v1 counters", () => {
    expect(readCgroupCpuCounters(hybrid, "weir/web")).toEqual(
      readCgroupCpuCounters(v1, "weir/web"),
    );
  });
  it("hybrid: a cgroup only in unified/ is not the partition's (the cpu controller is in v1)", () => {
    const root = copyTree(hybrid);
    fs.rmSync(path.join(root, "cpu/weir"), { recursive: true });
    fs.rmSync(path.join(root, "cpuacct/weir"), { recursive: true });
    expect(() => readCgroupCpuCounters(root, "weir/web")).toThrow(
      expect.objectContaining({ code: ErrorCodes.CGROUP_GONE }),
    );
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
    const cgroup = locateCgroup(root, "weir/web");
    fs.rmSync(path.join(root, "weir/web/cpu.stat"));
    expect(() => new HeldCgroupCpuCounters(root, "weir/web", cgroup)).toThrow(
      expect.objectContaining({ code: ErrorCodes.CGROUP_GONE }),
    );
  });
});
