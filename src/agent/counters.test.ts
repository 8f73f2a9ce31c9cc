import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { OwnCounters, ownCgroupPath, parseProcSelfCgroup, parseProcStat } from "./counters.ts";

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");
const procfs = path.join(FIX, "proc");
const cgroupfs = path.join(FIX, "cgroup");

describe("parseProcStat", () => {
  it("sums user+nice+system+irq+softirq ticks and counts cpuN lines", () => {
    const text =
      "cpu  214247 890 21123 83290 1212 0 319 9434 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\nintr 1\n";
    // 214247 + 890 + 21123 + 0 + 319 = 236579 (idle 83290, iowait 1212, steal 9434 excluded)
    expect(parseProcStat(text, "/proc/stat")).toEqual({ busyTicks: 236579, onlineCpus: 2 });
  });
  it("names the file and the line when it cannot parse", () => {
    expect(() => parseProcStat("cpu  1 2 x\n", "/proc/stat")).toThrow(/\/proc\/stat/);
    expect(() => parseProcStat("intr 1\n", "/p/stat")).toThrow(/no "cpu " line/);
  });
});

describe("own cgroup", () => {
  it("reads v1 cpuacct, v1 cpu and v2 paths from /proc/self/cgroup", () => {
    const v1 = "9:name=systemd:/\n2:cpuacct:/part/web\n1:cpu:/part/web2\n0::/\n";
    expect(parseProcSelfCgroup(v1)).toEqual({
      v1cpuacct: "/part/web",
      v1cpu: "/part/web2",
      v2: "/",
    });
    expect(parseProcSelfCgroup("4:cpu,cpuacct:/a\n")).toEqual({ v1cpu: "/a", v1cpuacct: "/a" });
    expect(parseProcSelfCgroup("0::/user.slice/x\n")).toEqual({ v2: "/user.slice/x" });
  });
  it("finds this process's cgroup on the real /proc", () => {
    expect(ownCgroupPath("/proc")).toMatch(/^\//);
    expect(ownCgroupPath(path.join(FIX, "nowhere"))).toBeNull();
  });
});

describe("OwnCounters", () => {
  it("reads the namespace's packets and socket drops and the cgroup's CPU (v1 fixture)", () => {
    const c = new OwnCounters({ procfs, cgroupfs, pid: 77, cgroup: "part/web" });
    // eth0 only (lo skipped): rx 3000 + rx drop 4 = 3004 offered, tx 711 served,
    // dropped = 4 at the interface + 2289 Udp InErrors at the socket.
    expect(c.read()).toEqual({
      rxPackets: 3004,
      txPackets: 711,
      droppedPackets: 4 + 2289,
      cpuUsageNs: 48213377812,
      nrPeriods: 5120,
      nrThrottled: 312,
      throttledNs: 18734562210,
    });
    c.close();
  });

  it("reads the whole machine's CPU from /proc/stat when there is no cgroup (a VM)", () => {
    const c = new OwnCounters({ procfs, cgroupfs, pid: 77, cgroup: null, ticksPerSec: 100 });
    // 236579 ticks at 100 Hz = 2365.79 s = 2_365_790_000_000 ns
    expect(c.read()).toMatchObject({ cpuUsageNs: 2_365_790_000_000, nrPeriods: 0 });
    c.close();
  });

  it("reads this very process's namespace and cgroup on the real host", () => {
    const own = ownCgroupPath("/proc");
    const c = new OwnCounters({
      procfs: "/proc",
      cgroupfs: "/sys/fs/cgroup",
      pid: process.pid,
      cgroup: own === "/" ? "" : own,
    });
    const r = c.read();
    expect(r.cpuUsageNs).toBeGreaterThan(0);
    expect(r.rxPackets).toBeGreaterThanOrEqual(0);
    c.close();
  });
});
