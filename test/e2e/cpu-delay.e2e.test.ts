// Real-host test of the CPU-delay signal (root, cgroup v1 cpu + cpuacct; PSI where the
// hybrid host's cgroup2 mount is at /sys/fs/cgroup/unified). A CPU-bound shell loop pinned
// to one CPU runs in cgroup weirt-<pid>-delay/work; a second one, the hog, pinned to the
// same CPU in weirt-<pid>-delay/hog. The work's delay fraction is measured alone (hog
// stopped), with the hog at equal shares, and with the hog in the idle class (cpu.idle = 1). Both processes
// are this file's children, exit by themselves after 90 s, and are killed by pid in afterAll.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { locateCgroup } from "../../src/cgroup/paths.ts";
import type { CounterSample } from "../../src/core/model.ts";
import { HeldCpuDelay } from "../../src/sensors/cpu-delay.ts";
import { openPartitionSensor } from "../../src/sensors/partition.ts";
import { throughputFromSamples } from "../../src/sensors/throughput.ts";
import { defaultRoots, type PartitionSensor } from "../../src/sensors/types.ts";

const CGROOT = "/sys/fs/cgroup";
const canRun =
  process.getuid?.() === 0 &&
  fs.existsSync(path.join(CGROOT, "cpu/cpu.cfs_quota_us")) &&
  fs.existsSync(path.join(CGROOT, "cpuacct/cpuacct.usage")) &&
  fs.existsSync("/usr/bin/taskset");
const hasUnified = fs.existsSync(path.join(CGROOT, "unified/cgroup.controllers"));

const PARENT = `weirt-${process.pid}-delay`;
const hierarchies = ["cpu", "cpuacct", ...(hasUnified ? ["unified"] : [])].map((h) =>
  path.join(CGROOT, h),
);
const dirsOf = (rel: string): string[] => hierarchies.map((h) => path.join(h, rel));
const WORK = `${PARENT}/work`;
const HOG = `${PARENT}/hog`;
/** The last CPU: both loops share it. */
const CPU = os.cpus().length - 1;
const WINDOW_MS = 1000;
const ROUNDS = 5;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

// A CPU-bound loop that ends by itself after 90 s (checked every ~100k iterations).
const LOOP =
  'end=$(($(date +%s)+90)); while [ "$(date +%s)" -lt "$end" ]; do i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; done';

const children: ChildProcess[] = [];

/** Starts the loop inside `dirs` (written before exec, so every thread is in them), pinned to CPU. */
function startLoop(dirs: string[]): ChildProcess {
  const enter = dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(" && ");
  const c = spawn("sh", ["-c", `${enter} && exec taskset -c ${CPU} sh -c '${LOOP}'`], {
    stdio: "ignore",
  });
  children.push(c);
  return c;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGKILL"); // by its pid: a process this file started
  await exited;
}

async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
    try {
      fs.rmdirSync(dir);
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // EBUSY while an exited task is reaped
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitUntil = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await sleep(20);
};
const members = (dir: string): string =>
  fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").trim();

interface Phase {
  /** Delay fraction from the partition sensor (its default source order). */
  fraction: number;
  /** The same window from summed run_delay alone, for comparison. */
  schedstatFraction: number;
  cpuCores: number;
}

/**
 * One window of WINDOW_MS on the work cgroup, read by the sensor and by a schedstat-only reader.
 * Null when either reading had no fraction for the window (the sensor says null when the
 * counters moved too little or inconsistently, e.g. the loop got no CPU at all on a host busy
 * with other work): such windows are counted and left out, not read as 0.
 */
async function measure(sensor: PartitionSensor, schedstat: HeldCpuDelay): Promise<Phase | null> {
  await sleep(200); // let the scheduler settle after the change
  const d0 = schedstat.read();
  const s0 = sensor.read(Date.now());
  await sleep(WINDOW_MS);
  const d1 = schedstat.read();
  const s1 = sensor.read(Date.now());
  const t = throughputFromSamples("work", s0, s1, "host");
  const viaSchedstat = throughputFromSamples(
    "work",
    { ...s0, cpuDelayNs: d0 } as CounterSample,
    { ...s1, cpuDelayNs: d1 } as CounterSample,
    "host",
  );
  // the sensor always fills the field (a number, or null for "cannot tell")
  expect(t.cpuDelayFraction).not.toBeUndefined();
  if (t.cpuDelayFraction == null || viaSchedstat.cpuDelayFraction == null) return null;
  return {
    fraction: t.cpuDelayFraction!,
    schedstatFraction: viaSchedstat.cpuDelayFraction!,
    cpuCores: t.cpuCores,
  };
}

describe.skipIf(!canRun)("CPU delay of a partition under a hog on its CPU (root, e2e)", () => {
  let work: ChildProcess;
  let hog: ChildProcess | null = null;

  beforeAll(async () => {
    for (const d of [...dirsOf(PARENT), ...dirsOf(WORK), ...dirsOf(HOG)]) fs.mkdirSync(d);
    work = startLoop(dirsOf(WORK));
    await waitUntil(() => members(dirsOf(WORK).at(-1)!) === String(work.pid));
  });

  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGCONT");
      await stop(c);
    }
    for (const d of [...dirsOf(WORK), ...dirsOf(HOG), ...dirsOf(PARENT)]) await rmdirRetry(d);
    expect(hierarchies.filter((h) => fs.existsSync(path.join(h, PARENT)))).toEqual([]);
  });

  it("the delay fraction is clearly higher with a hog on the same CPU, and lower again when the hog is in the idle class", async () => {
    const sensor = openPartitionSensor({ cgroup: WORK, interfaces: [] }, defaultRoots);
    const cgroup = locateCgroup(CGROOT, WORK);
    const schedstat = new HeldCpuDelay(defaultRoots, cgroup, { sources: ["schedstat"] });
    const psiProbe = new HeldCpuDelay(defaultRoots, cgroup);
    const hogIdle = path.join(CGROOT, "cpu", HOG, "cpu.idle");
    try {
      psiProbe.read();
      // the loop is in the unified cgroup as well: PSI is the partition's, and is used
      expect(psiProbe.source).toBe(hasUnified ? "psi" : "schedstat");

      hog = startLoop(dirsOf(HOG));
      await waitUntil(() => members(dirsOf(HOG)[0]!) === String(hog!.pid));
      expect(fs.readFileSync(path.join(CGROOT, "cpu", HOG, "cpu.shares"), "utf8").trim()).toBe(
        fs.readFileSync(path.join(CGROOT, "cpu", WORK, "cpu.shares"), "utf8").trim(),
      );
      // Other processes on this shared host come and go on that CPU too: the three
      // conditions are interleaved (the hog stopped = alone) and compared by their medians.
      const by: Record<"alone" | "shared" | "idle", Phase[]> = { alone: [], shared: [], idle: [] };
      let unknown = 0;
      const add = (k: keyof typeof by, p: Phase | null) => {
        if (p) by[k].push(p);
        else unknown++;
      };
      for (let round = 0; round < ROUNDS; round++) {
        process.kill(hog.pid!, "SIGSTOP");
        fs.writeFileSync(hogIdle, "0");
        add("alone", await measure(sensor, schedstat));
        process.kill(hog.pid!, "SIGCONT");
        add("shared", await measure(sensor, schedstat));
        fs.writeFileSync(hogIdle, "1");
        add("idle", await measure(sensor, schedstat));
      }
      // most windows of each condition had a fraction
      for (const k of ["alone", "shared", "idle"] as const)
        expect(by[k].length, `${k}: ${unknown} windows without a fraction`).toBeGreaterThanOrEqual(
          Math.ceil(ROUNDS / 2),
        );
      const med = (k: keyof typeof by, f: keyof Phase): number => median(by[k].map((p) => p[f]));
      const [alone, shared, idle] = (["alone", "shared", "idle"] as const).map((k) => ({
        fraction: med(k, "fraction"),
        schedstatFraction: med(k, "schedstatFraction"),
        cpuCores: med(k, "cpuCores"),
      })) as [Phase, Phase, Phase];
      const show = (p: Phase) =>
        `${p.fraction.toFixed(3)} (schedstat ${p.schedstatFraction.toFixed(3)}, ${p.cpuCores.toFixed(2)} cores)`;
      console.log(
        `CPU ${CPU}, medians of ${ROUNDS} windows of ${WINDOW_MS} ms, sensor source ${psiProbe.source}: delay fraction` +
          ` alone ${show(alone)}, hog at equal shares ${show(shared)}, idle-class hog ${show(idle)}` +
          ` (${unknown} of ${3 * ROUNDS} windows without a fraction)`,
      );

      // At equal shares the hog takes half of what the loop's group gets, so the delay
      // fraction rises by about half of what was not delay alone ((1 - alone) / 2, whatever
      // else runs there); asked: half of that.
      const rise = (f: number) => (1 - f) / 4;
      // every window's sensor / schedstat-only fraction, for a failure's message (a soak on
      // 2026-12-05 once read the sensor's PSI at 0 in most shared windows, schedstat 0.49)
      const windows = (["alone", "shared", "idle"] as const)
        .map(
          (k) =>
            `${k}: ${by[k].map((p) => `${p.fraction.toFixed(3)}/${p.schedstatFraction.toFixed(3)}`).join(" ")}`,
        )
        .join("; ");
      expect(shared.fraction, windows).toBeGreaterThan(alone.fraction + rise(alone.fraction));
      expect(shared.schedstatFraction).toBeGreaterThan(
        alone.schedstatFraction + rise(alone.schedstatFraction),
      );
      expect(shared.cpuCores).toBeLessThan(alone.cpuCores * 0.8);
      // In the idle class the hog yields to the loop: the delay falls back toward alone,
      // asked: at least a third of the way.
      const back = (s: number, a: number) => s - (s - a) / 3;
      expect(idle.fraction).toBeLessThan(back(shared.fraction, alone.fraction));
      expect(idle.schedstatFraction).toBeLessThan(
        back(shared.schedstatFraction, alone.schedstatFraction),
      );
      expect(idle.cpuCores).toBeGreaterThan(shared.cpuCores);
      for (const p of [...by.alone, ...by.shared, ...by.idle])
        for (const f of [p.fraction, p.schedstatFraction]) {
          expect(f).toBeGreaterThanOrEqual(0);
          expect(f).toBeLessThanOrEqual(1);
        }
    } finally {
      sensor.close();
      schedstat.close();
      psiProbe.close();
    }
  });
});
