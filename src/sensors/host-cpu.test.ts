import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, type WeirError } from "../core/errors.ts";
import { HeldHostCpu, hostCpuFromSamples, parseProcStatCpu } from "./host-cpu.ts";
import type { HostCpuSample } from "./types.ts";

const FIX_PROC = path.join(import.meta.dirname, "fixtures", "proc");
// /proc/stat of this project's 2-CPU Debian 12 VM, byte for byte (fixtures/proc/stat).
const FIXTURE = fs.readFileSync(path.join(FIX_PROC, "stat"), "latin1");

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const thrown = (fn: () => unknown): WeirError => {
  try {
    fn();
  } catch (e) {
    return e as WeirError;
  }
  throw new Error("expected a throw");
};

describe("parseProcStatCpu", () => {
  it("reads the aggregate cpu line and counts the cpuN lines of the kernel's text", () => {
    // cpu  16453 0 2340 61451 137 0 151 9 0 0  (user nice system idle iowait irq softirq steal guest guest_nice)
    expect(parseProcStatCpu(FIXTURE, "/proc/stat")).toEqual({
      cpus: 2,
      ticks: {
        userTicks: 16453,
        niceTicks: 0,
        systemTicks: 2340,
        idleTicks: 61451,
        iowaitTicks: 137,
        irqTicks: 0,
        softirqTicks: 151,
        stealTicks: 9,
      },
    });
  });

  it("names the file, the rule and the text when the content does not fit", () => {
    const cases: Array<[string, RegExp]> = [
      ["intr 1 2 3\n", /\/proc\/stat: first line is not the aggregate "cpu" line: "intr 1 2 3"/],
      ["cpu  1 2 3 4\ncpu0 1 2 3 4\n", /"cpu" line has 4 fields, expected at least 8/],
      ["cpu  1 2 3 x 5 6 7 8\ncpu0 1\n", /"cpu" field 4 \(idleTicks\) is not an unsigned integer/],
      ["cpu  1 2 3 4 5 6 7 8 0 0\nintr 5\n", /no "cpuN" lines after the "cpu" line/],
      ["", /first line is not the aggregate "cpu" line/],
    ];
    for (const [text, msg] of cases) {
      const err = thrown(() => parseProcStatCpu(text, "/proc/stat"));
      expect(err.code).toBe(ErrorCodes.COUNTER_MALFORMED);
      expect(err.message).toMatch(msg);
    }
  });
});

describe("hostCpuFromSamples", () => {
  const prev: HostCpuSample = { atMs: 0, ...parseProcStatCpu(FIXTURE, "/proc/stat") };
  const later = (d: Partial<HostCpuSample["ticks"]>, atMs = 1000): HostCpuSample => {
    const ticks = { ...prev.ticks };
    for (const [k, v] of Object.entries(d)) ticks[k as keyof typeof ticks] += v;
    return { atMs, cpus: prev.cpus, ticks };
  };

  it("splits the window's CPU time into idle, busy cores and steal", () => {
    // one second on 2 CPUs at USER_HZ 100 = 200 ticks:
    // user 60 + system 20 + softirq 5 = 85 busy, idle 100 + iowait 10 = 110 idle, steal 5
    const next = later({
      userTicks: 60,
      systemTicks: 20,
      softirqTicks: 5,
      idleTicks: 100,
      iowaitTicks: 10,
      stealTicks: 5,
    });
    const use = hostCpuFromSamples(prev, next)!;
    expect(use.cpus).toBe(2);
    expect(use.idleFraction).toBeCloseTo(110 / 200, 12); // 0.55
    expect(use.busyCores).toBeCloseTo((85 / 200) * 2, 12); // 0.85 cores
    expect(use.stealFraction).toBeCloseTo(5 / 200, 12); // 0.025
    // the three parts cover all CPU time: 0.55 + 0.85 / 2 + 0.025 = 1
    expect(use.idleFraction + use.busyCores / use.cpus + use.stealFraction).toBeCloseTo(1, 12);
  });

  it("a fully busy host: 0 idle, every CPU busy", () => {
    // nice 150 + irq 10 + system 40 = 200 of 200 ticks
    const use = hostCpuFromSamples(prev, later({ niceTicks: 150, irqTicks: 10, systemTicks: 40 }))!;
    expect(use).toEqual({ cpus: 2, idleFraction: 0, busyCores: 2, stealFraction: 0 });
  });

  it("a field that went backwards (iowait on NO_HZ kernels) counts 0, never negative", () => {
    // iowait -3 -> 0; idle 150 + user 50 = 200 -> idle 0.75, busy 0.25 * 2 = 0.5 cores
    const use = hostCpuFromSamples(
      prev,
      later({ iowaitTicks: -3, idleTicks: 150, userTicks: 50 }),
    )!;
    expect(use).toEqual({ cpus: 2, idleFraction: 0.75, busyCores: 0.5, stealFraction: 0 });
  });

  it("no tick elapsed: null rather than 0/0", () => {
    expect(hostCpuFromSamples(prev, later({}, 5))).toBeNull();
  });
});

describe("HeldHostCpu", () => {
  it("re-reads <procfs>/stat at offset 0 on its held descriptor", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-hostcpu-"));
    tmpDirs.push(dir);
    const file = path.join(dir, "stat");
    fs.writeFileSync(file, FIXTURE);
    const sensor = new HeldHostCpu(dir);
    try {
      const a = sensor.read(100);
      expect(a.atMs).toBe(100);
      expect(a.ticks.idleTicks).toBe(61451);
      // same file (same inode), new content: the next read sees it
      fs.writeFileSync(file, FIXTURE.replace("cpu  16453 0 2340 61451", "cpu  16553 0 2340 61551"));
      const b = sensor.read(1100);
      // +100 user, +100 idle of 200 ticks on 2 CPUs: half idle, one core busy
      expect(hostCpuFromSamples(a, b)).toEqual({
        cpus: 2,
        idleFraction: 0.5,
        busyCores: 1,
        stealFraction: 0,
      });
    } finally {
      sensor.close();
    }
  });

  it("a procfs root without stat is COUNTER_UNREADABLE, naming the path", () => {
    const err = thrown(() => new HeldHostCpu("/nonexistent-procfs"));
    expect(err.code).toBe(ErrorCodes.COUNTER_UNREADABLE);
    expect(err.message).toContain("/nonexistent-procfs/stat");
  });

  it.skipIf(!fs.existsSync("/proc/stat"))(
    "on this host's /proc: a spinning thread shows as busy CPU",
    () => {
      const sensor = new HeldHostCpu("/proc");
      try {
        const a = sensor.read(performance.now());
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        let x = 0;
        while (performance.now() - t0 < 400) x += Math.sqrt(x + 1);
        const ownCores = (() => {
          const u = process.cpuUsage(cpu0);
          return (u.user + u.system) / 1000 / (performance.now() - t0);
        })();
        const b = sensor.read(performance.now());
        const use = hostCpuFromSamples(a, b)!;
        expect(x).toBeGreaterThan(0);
        expect(use.cpus).toBeGreaterThanOrEqual(1);
        expect(use.idleFraction + use.busyCores / use.cpus + use.stealFraction).toBeCloseTo(1, 9);
        // The host was busy at least with this thread; 400 ms on N CPUs is 40·N ticks, so
        // tick rounding costs at most a few ticks: allow 0.15 cores below what we measured.
        expect(use.busyCores).toBeGreaterThan(ownCores - 0.15);
        expect(use.busyCores).toBeLessThanOrEqual(use.cpus);
      } finally {
        sensor.close();
      }
    },
  );
});
