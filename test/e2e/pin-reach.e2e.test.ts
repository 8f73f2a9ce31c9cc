// Pinning a partition and what weir reads as its reachable CPUs, on real cgroups with idle
// processes (root). A benchmark that pins only its server's pid (`taskset -a -p PID`) leaves a
// child started before the pin on every CPU — as a server run from the TypeScript sources does
// with the esbuild service tsx starts when its modules are not in tsx's cache yet — and weir,
// reading the union of the affinity of every thread in the cgroup, then keeps the capacity it
// was configured with. pinCgroupMembers pins every process in the cgroup.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectCgroupLayout } from "../../src/cgroup/layout.ts";
import { cgroupDirs, partitionCgroup } from "../../src/cgroup/paths.ts";
import { reachableCapacity } from "../../src/manager/reach.ts";
import { ReachableCpusReader, readReachableCpus } from "../../src/sensors/cpuset.ts";
import { defaultRoots } from "../../src/sensors/types.ts";
import { cgroupProcs, pinCgroupMembers } from "../../src/testbed/cgroups.ts";

const isRoot = process.getuid?.() === 0;
const online = (() => {
  try {
    return fs.readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  } catch {
    return "";
  }
})();
// CPU 0 and CPU 1 both online (the pin moves everything to CPU 1)
const twoCpus = /^0-([1-9]\d*)$/.test(online) && os.cpus().length >= 2;

const rel = `weir-e2e-pin-${process.pid}`;
const layout = isRoot ? detectCgroupLayout(defaultRoots.cgroupfs) : null;
const dirs = layout ? cgroupDirs(layout, rel) : [];
const started: ChildProcess[] = [];

afterAll(async () => {
  // only the processes this file started, by pid: the shell and the sleep it started
  const pids = [...new Set([...dirs.flatMap(cgroupProcs), ...started.map((c) => c.pid!)])];
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 100 && dirs.some((d) => cgroupProcs(d).length > 0); i++)
    await new Promise((r) => setTimeout(r, 20));
  for (const d of [...dirs].reverse()) if (fs.existsSync(d)) fs.rmdirSync(d);
});

describe.skipIf(!isRoot || !twoCpus)("pinning a partition and its reachable CPUs (root)", () => {
  it("a child started before a pin by pid keeps the partition on both CPUs; pinCgroupMembers pins it too", async () => {
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    // a shell in the partition's cgroups that starts an idle child, then waits: the child's
    // affinity is the shell's at fork (every CPU), as esbuild's is a tsx server's
    const joins = dirs.map((d) => `echo $$ > ${path.join(d, "cgroup.procs")}`).join(" && ");
    const sh = spawn("sh", ["-c", `${joins} || exit 97; sleep 30 & wait`], { stdio: "ignore" });
    started.push(sh);
    const cpuDir = partitionCgroup(layout!, rel).cpu;
    for (let i = 0; i < 250 && cgroupProcs(cpuDir).length < 2; i++)
      await new Promise((r) => setTimeout(r, 20));
    const members = cgroupProcs(cpuDir);
    expect(members).toHaveLength(2); // the shell and its sleep
    const threads = partitionCgroup(layout!, rel).threadsFile;
    const reach = () => readReachableCpus(defaultRoots, rel, threads)?.cpus ?? null;
    // the manager's sweep reads through one reader that keeps what it read between calls: it
    // must see each pin on its next call, as the one-off read does
    const reader = new ReachableCpusReader(defaultRoots);
    const swept = () => reader.read(rel, threads)?.cpus ?? null;
    expect(swept()).toEqual(reach());

    // the benchmarks' old pin: every thread of the shell's pid, not its child
    execFileSync("taskset", ["-a", "-p", "-c", "1", String(sh.pid)], { stdio: "ignore" });
    const widened = reach();
    expect(widened).toContain(0);
    expect(widened).toContain(1);
    expect(swept()).toEqual(widened);
    // so 1,700m configured stays 1,700m, not the 1,000m of the one CPU the server works on
    expect(reachableCapacity(1700, [widened]).capacityCpuMillis).toBe(1700);

    const before = pinCgroupMembers(dirs, "1");
    expect(before.map(([pid]) => pid).sort()).toEqual([...members].sort());
    expect(reach()).toEqual([1]);
    expect(swept()).toEqual([1]);
    expect(reachableCapacity(1700, [reach()]).capacityCpuMillis).toBe(1000);
  });
});
