import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { locateCgroup } from "../cgroup/paths.ts";
import { cpuDelayPaths, HeldCpuDelay, PSI_RECHECK_READS, sameMembers } from "./cpu-delay.ts";
import type { Roots } from "./types.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A writable copy of the fixtures; roots for one cgroup tree of it. */
function tree(cgroupTree: "v1" | "v2" | "hybrid"): { base: string; roots: Roots } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "weir-delay-"));
  tmpDirs.push(base);
  fs.cpSync(FIX, base, { recursive: true });
  return {
    base,
    roots: {
      sysfs: path.join(base, "sys"),
      procfs: path.join(base, "proc"),
      cgroupfs: path.join(base, cgroupTree, "cgroup"),
    },
  };
}
const write = (file: string, text: string): void => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
};
const psiText = (someUs: number): string =>
  `some avg10=3.10 avg60=1.02 avg300=0.24 total=${someUs}\nfull avg10=3.10 avg60=1.02 avg300=0.24 total=${Math.max(0, someUs - 1000)}\n`;
const schedstat = (runDelayNs: number): string => `5000000000 ${runDelayNs} 321\n`;
const openFds = (): number => fs.readdirSync("/proc/self/fd").length;

/** A v1 cgroup (cpu + cpuacct) for weir/web with `pids` in cgroup.procs and `tids` in tasks, and a unified v2 mount. */
function hybridV1(pids: number[], tids: number[], v2Pids: number[]) {
  const t = tree("v1");
  const cg = t.roots.cgroupfs;
  write(path.join(cg, "cpu/weir/web/cgroup.procs"), pids.map((p) => `${p}\n`).join(""));
  write(path.join(cg, "cpu/weir/web/tasks"), tids.map((p) => `${p}\n`).join(""));
  write(path.join(cg, "unified/cgroup.controllers"), "hugetlb\n");
  write(path.join(cg, "unified/weir/web/cgroup.procs"), v2Pids.map((p) => `${p}\n`).join(""));
  write(path.join(cg, "unified/weir/web/cpu.pressure"), psiText(1_000_000));
  for (const tid of tids) write(path.join(t.roots.procfs, String(tid), "schedstat"), schedstat(0));
  const cgroup = locateCgroup(cg, "weir/web");
  return { ...t, cg, cgroup };
}

describe("cpuDelayPaths", () => {
  it("v2: the cgroup's own cpu.pressure and cgroup.threads; v1: unified/<path> and tasks", () => {
    const v2 = tree("v2");
    expect(cpuDelayPaths(locateCgroup(v2.roots.cgroupfs, "weir/web"))).toEqual({
      psiDir: path.join(v2.roots.cgroupfs, "weir/web"),
      membersDir: null,
      threadsFile: path.join(v2.roots.cgroupfs, "weir/web/cgroup.threads"),
    });
    const v1 = tree("v1");
    // no unified mount in this tree: no PSI
    expect(cpuDelayPaths(locateCgroup(v1.roots.cgroupfs, "/weir/web/"))).toEqual({
      psiDir: null,
      membersDir: path.join(v1.roots.cgroupfs, "cpu/weir/web"),
      threadsFile: path.join(v1.roots.cgroupfs, "cpu/weir/web/tasks"),
    });
    const h = hybridV1([1], [1], [1]);
    expect(cpuDelayPaths(h.cgroup).psiDir).toBe(path.join(h.cg, "unified/weir/web"));
  });

  it("sameMembers ignores order", () => {
    expect(sameMembers([3, 1, 2], [1, 2, 3])).toBe(true);
    expect(sameMembers([], [])).toBe(true);
    expect(sameMembers([1, 2], [1, 3])).toBe(false);
    expect(sameMembers([1], [1, 1])).toBe(false);
  });
});

describe("HeldCpuDelay from PSI", () => {
  it("v2: accumulates the some total's deltas, us -> ns, from 0 at the first read", () => {
    const { roots } = tree("v2");
    const d = new HeldCpuDelay(roots, locateCgroup(roots.cgroupfs, "weir/web"));
    const file = path.join(roots.cgroupfs, "weir/web/cpu.pressure");
    expect(d.read()).toBe(0);
    expect(d.source).toBe("psi");
    write(file, psiText(2261384 + 12_500)); // +12.5 ms of "some" stall
    expect(d.read()).toBe(12_500_000);
    write(file, psiText(2261384 + 40_000)); // +27.5 ms more
    expect(d.read()).toBe(40_000_000);
    // the cgroup was re-created: its total restarts low; the window adds nothing, never goes back
    write(file, psiText(300));
    expect(d.read()).toBe(40_000_000);
    write(file, psiText(1300)); // +1 ms after the restart
    expect(d.read()).toBe(41_000_000);
    d.close();
  });

  it("hybrid v1 host: PSI of unified/<path> only while it holds the same processes", () => {
    const h = hybridV1([4242], [4242, 4243], [4242]);
    const d = new HeldCpuDelay(h.roots, h.cgroup);
    const psi = path.join(h.cg, "unified/weir/web/cpu.pressure");
    expect(d.read()).toBe(0);
    expect(d.source).toBe("psi");
    write(psi, psiText(1_003_000));
    expect(d.read()).toBe(3_000_000);
    // the process left the v2 cgroup (moved elsewhere): PSI there would read 0 forever
    write(path.join(h.cg, "unified/weir/web/cgroup.procs"), "");
    write(psi, psiText(1_009_000));
    expect(d.read()).toBe(3_000_000); // switch to schedstat: a fresh baseline, nothing added
    expect(d.source).toBe("schedstat");
    expect(d.skipped).toContain("holds pids []");
    expect(d.skipped).toContain("[4242]");
    write(path.join(h.roots.procfs, "4243/schedstat"), schedstat(2_000_000));
    expect(d.read()).toBe(5_000_000);
    d.close();
  });

  it("a cpu.pressure that is not there is looked for again every PSI_RECHECK_READS reads, not on each", () => {
    const h = hybridV1([4242], [4242], [4242]);
    const psi = path.join(h.cg, "unified/weir/web/cpu.pressure");
    fs.rmSync(psi);
    const d = new HeldCpuDelay(h.roots, h.cgroup);
    expect(d.read()).toBe(0);
    expect(d.source).toBe("schedstat");
    expect(d.skipped).toContain("psi: no");
    write(psi, psiText(1_000_000)); // appears (its cgroup2 directory was made)
    for (let i = 1; i < PSI_RECHECK_READS; i++) {
      d.read();
      expect(d.source).toBe("schedstat");
    }
    d.read(); // read PSI_RECHECK_READS + 1: looked for again, found
    expect(d.source).toBe("psi");
    d.close();
  });

  it("v1 without a unified mount falls back to schedstat", () => {
    const { roots } = tree("v1");
    const d = new HeldCpuDelay(roots, locateCgroup(roots.cgroupfs, "weir/web"));
    expect(d.read()).toBe(0);
    expect(d.source).toBe("schedstat");
    expect(d.heldThreads).toBe(2);
    d.close();
  });
});

describe("HeldCpuDelay from schedstat", () => {
  it("sums run_delay deltas of threads seen in both reads; threads come and go, never backwards", () => {
    const h = hybridV1([10], [10, 11], [99]); // v2 holds another process: PSI not used
    const proc = (tid: number) => path.join(h.roots.procfs, String(tid), "schedstat");
    const tasks = path.join(h.cg, "cpu/weir/web/tasks");
    const d = new HeldCpuDelay(h.roots, h.cgroup);
    write(proc(10), schedstat(1_000_000));
    write(proc(11), schedstat(5_000_000));
    expect(d.read()).toBe(0);
    expect(d.source).toBe("schedstat");
    // 10: +2 ms, 11: +1 ms -> 3 ms
    write(proc(10), schedstat(3_000_000));
    write(proc(11), schedstat(6_000_000));
    expect(d.read()).toBe(3_000_000);
    // 11 exits, 12 appears with 50 ms already waited (before we saw it: not counted); 10: +1 ms
    write(tasks, "10\n12\n");
    write(proc(12), schedstat(50_000_000));
    write(proc(10), schedstat(4_000_000));
    expect(d.read()).toBe(4_000_000);
    expect(d.heldThreads).toBe(2);
    // 12: +0.5 ms; 10 missing from /proc between list and open (exited): skipped
    write(proc(12), schedstat(50_500_000));
    fs.rmSync(path.join(h.roots.procfs, "10"), { recursive: true });
    write(tasks, "12\n13\n");
    expect(d.read()).toBe(4_500_000);
    expect(d.heldThreads).toBe(1);
    d.close();
    expect(d.heldThreads).toBe(0);
  });

  it("PSI can be skipped by option; with no source at all read() is undefined", () => {
    const h = hybridV1([10], [10], [10]);
    const d = new HeldCpuDelay(h.roots, h.cgroup, { sources: ["schedstat"] });
    d.read();
    expect(d.source).toBe("schedstat");
    d.close();
    fs.rmSync(path.join(h.cg, "cpu/weir/web/tasks"));
    fs.rmSync(path.join(h.cg, "unified"), { recursive: true });
    const none = new HeldCpuDelay(h.roots, h.cgroup);
    expect(none.read()).toBeUndefined();
    expect(none.source).toBeNull();
    expect(none.skipped).toContain("tasks");
    none.close();
  });

  it("close releases every descriptor", () => {
    const h = hybridV1([10], [10, 11, 12], [99]);
    const before = openFds();
    const d = new HeldCpuDelay(h.roots, h.cgroup);
    d.read();
    expect(openFds()).toBeGreaterThan(before);
    d.close();
    expect(openFds()).toBe(before);
  });
});
