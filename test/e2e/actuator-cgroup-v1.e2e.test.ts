// Needs root and the cgroup v1 cpu/cpuacct hierarchies of this host (docs/measured-facts.md). Creates
// /sys/fs/cgroup/{cpu,cpuacct}/weirt-<pid>-act[...] and removes them after; the only process
// it starts is a bounded busy loop (exits by itself after 20 s, killed by pid in finally).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { CgroupV1Backend } from "../../src/actuators/cgroup-v1.ts";
import { actuatorContract } from "../../src/actuators/contract.ts";
import type { ActuatorTarget } from "../../src/actuators/types.ts";
import { v1Format } from "../../src/cgroup/formats.ts";
import { cappedDirective } from "../../src/core/directive.ts";
import { ErrorCodes } from "../../src/core/errors.ts";

const CGROUPFS = "/sys/fs/cgroup";
const CPU = path.join(CGROUPFS, "cpu");
const CPUACCT = path.join(CGROUPFS, "cpuacct");
const PARENT = `weirt-${process.pid}-act`;
const backend = new CgroupV1Backend({ cgroupfs: CGROUPFS });
const mounts = new Set<string>();
/** Directories made here, removed deepest first. */
const made = new Set<string>();

function mkdir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  made.add(dir);
}

async function rmdir(dir: string): Promise<void> {
  if (mounts.delete(dir)) execFileSync("umount", [dir]);
  for (let i = 0; ; i++) {
    try {
      fs.rmdirSync(dir);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") break;
      // EBUSY while an exiting process is still being removed from the cgroup.
      if (code !== "EBUSY" || i >= 50) throw err;
      await sleep(20);
    }
  }
  made.delete(dir);
}

afterAll(async () => {
  for (const dir of [...made].sort((a, b) => b.length - a.length)) await rmdir(dir);
  for (const dir of [path.join(CPU, PARENT), path.join(CPUACCT, PARENT)]) await rmdir(dir);
});

const files = (t: ActuatorTarget) => {
  const dir = path.join(CPU, t.cgroup);
  const values: Record<string, string> = {};
  for (const f of v1Format.snapshotFiles)
    values[f] = fs.readFileSync(path.join(dir, f), "latin1").trim();
  return values;
};

actuatorContract({
  name: "cgroup-v1 on real cgroups of this host",
  format: v1Format,
  makeBackend: () => backend,
  makeTarget: (label, init) => {
    const cgroup = `${PARENT}/${label}`;
    mkdir(path.join(CPU, cgroup));
    if (init?.periodUsec)
      fs.writeFileSync(path.join(CPU, cgroup, "cpu.cfs_period_us"), String(init.periodUsec));
    return { partition: label, cgroup };
  },
  readBack: (t) => v1Format.describe(files(t)),
  removeTarget: (t) => rmdir(path.join(CPU, t.cgroup)),
  // Root ignores file modes; a read-only bind mount is what a container's ro cgroupfs gives (EROFS).
  makeUnwritable: (t) => {
    const dir = path.join(CPU, t.cgroup);
    execFileSync("mount", ["--bind", dir, dir]);
    mounts.add(dir);
    execFileSync("mount", ["-o", "remount,ro,bind", dir]);
  },
});

describe("cgroup-v1 with the real kernel", () => {
  it("a quota above the parent's is refused (EINVAL): retryable, retried, then a valid one is written", async () => {
    const parent = `${PARENT}/capped`;
    mkdir(path.join(CPU, parent));
    fs.writeFileSync(path.join(CPU, parent, "cpu.cfs_quota_us"), "50000");
    const t = { partition: "child", cgroup: `${parent}/child` };
    mkdir(path.join(CPU, t.cgroup));
    const a = backend.open(t);
    try {
      const dir = cappedDirective("child", 800, 100);
      const r = a.apply(dir);
      expect(r.written).toEqual([]);
      expect(r.error).toMatchObject({ code: ErrorCodes.APPLY_FAILED, retryable: true });
      expect(r.error?.message).toContain(`${t.cgroup}/cpu.cfs_quota_us`);
      expect(r.error?.message).toContain('"80000"');
      expect(r.error?.message).toContain("EINVAL");
      // Not cached as written: the next cycle tries again.
      expect(a.apply(dir).error?.code).toBe(ErrorCodes.APPLY_FAILED);
      expect(a.apply(cappedDirective("child", 300, 100)).written).toEqual(["cpu.cfs_quota_us"]);
      expect(files(t)["cpu.cfs_quota_us"]).toBe("30000");
      expect(a.stats?.()).toMatchObject({ writes: 1, failedWrites: 2 });
    } finally {
      a.close();
      await rmdir(path.join(CPU, t.cgroup));
      await rmdir(path.join(CPU, parent));
    }
  });

  it("re-applying a 10 % cap every 20 ms does not refill the quota: the process stays near 10 %", async () => {
    const t = { partition: "hog", cgroup: `${PARENT}/hog` };
    const cpuDir = path.join(CPU, t.cgroup);
    const acctDir = path.join(CPUACCT, t.cgroup);
    mkdir(cpuDir);
    mkdir(acctDir);
    const a = backend.open(t);
    let hog: ChildProcess | undefined;
    try {
      hog = spawn(
        process.execPath,
        ["-e", "process.stdout.write('r');const e=Date.now()+20000;while(Date.now()<e){}"],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const started = hog;
      await new Promise((resolve, reject) => {
        started.stdout?.once("data", resolve);
        started.once("error", reject);
      });
      fs.writeFileSync(path.join(cpuDir, "cgroup.procs"), String(hog.pid));
      fs.writeFileSync(path.join(acctDir, "cgroup.procs"), String(hog.pid));

      // 100 millis = 10 % of a CPU: 100 * 100000 / 1000 = 10000 us per 100000 us period.
      const directive = cappedDirective("hog", 100, 100);
      expect(a.apply(directive).written).toEqual(["cpu.cfs_quota_us"]);
      await sleep(300);

      const usageNs = () => Number(fs.readFileSync(path.join(acctDir, "cpuacct.usage"), "latin1"));
      const throttled = () =>
        Number(
          /nr_throttled (\d+)/.exec(fs.readFileSync(path.join(cpuDir, "cpu.stat"), "latin1"))?.[1],
        );
      /** Fraction of one CPU the cgroup used over `ms`, calling `tick` every 20 ms. */
      const cpuFraction = async (ms: number, tick: () => void): Promise<number> => {
        const u0 = usageNs();
        const t0 = process.hrtime.bigint();
        const end = Date.now() + ms;
        while (Date.now() < end) {
          tick();
          await sleep(20);
        }
        return (usageNs() - u0) / Number(process.hrtime.bigint() - t0);
      };

      const writesBefore = a.stats?.().writes;
      const throttledBefore = throttled();
      const managed = await cpuFraction(1000, () => {
        const r = a.apply(directive);
        if (r.written.length > 0 || r.error)
          throw new Error(`unexpected write: ${JSON.stringify(r)}`);
      });
      expect(a.stats?.().writes).toBe(writesBefore);
      expect(a.stats?.().unchangedSkips).toBeGreaterThanOrEqual(2 * 20);
      expect(throttled()).toBeGreaterThan(throttledBefore);
      expect(managed).toBeGreaterThan(0.02); // it ran
      expect(managed).toBeLessThan(0.15); // and no more than its 10 % (+ slack)

      // Control: rewriting the same value on each tick (what weir must never do) refills the
      // runtime every time (docs/measured-facts.md: 65 % on an idle machine). Compared only when the hog got
      // its quota above, i.e. the machine was not so busy that the hog was starved either way.
      const quotaFile = path.join(cpuDir, "cpu.cfs_quota_us");
      const naive = await cpuFraction(1000, () => fs.writeFileSync(quotaFile, "10000"));
      console.log(
        `cgroup v1, 10 % cap, re-applied every 20 ms: weir ${(managed * 100).toFixed(1)} % of a CPU, ` +
          `naive rewrite ${(naive * 100).toFixed(1)} %`,
      );
      if (managed > 0.06) expect(naive).toBeGreaterThan(managed);
    } finally {
      a.close();
      if (hog?.pid !== undefined && hog.exitCode === null && hog.signalCode === null) {
        const exited = new Promise((resolve) => hog?.once("exit", resolve));
        process.kill(hog.pid, "SIGKILL");
        await exited;
      }
      await rmdir(cpuDir);
      await rmdir(acctDir);
    }
  });
});
