import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import {
  type AllocationPoint,
  allocationPoint,
  demoPlan,
  demoRate,
  demoTrace,
  followMs,
  formatWorkConservation,
  meanAllocation,
  meanWorkConservation,
  meanWorkConservationOfPoints,
  summarisePhases,
  workConservation,
} from "./scenario.ts";

describe("demo scenario", () => {
  const plan = demoPlan(["p1", "p2", "p3"], 60_000, 3000, 300);

  it("gives each partition a hot phase, then a moderate one", () => {
    // 60 s / (3 + 1) phases = 15 s each
    expect(plan.phases.map((p) => [p.name, p.fromMs, p.toMs])).toEqual([
      ["p1 hot", 0, 15_000],
      ["p2 hot", 15_000, 30_000],
      ["p3 hot", 30_000, 45_000],
      ["all moderate", 45_000, 60_000],
    ]);
    expect(demoRate(plan, "p1", 1000)).toBe(3000);
    expect(demoRate(plan, "p2", 1000)).toBe(300);
    expect(demoRate(plan, "p2", 15_000)).toBe(3000);
    // moderate: (3000 + 300) / 4 = 825
    expect(demoRate(plan, "p3", 50_000)).toBe(825);
    expect(demoTrace(plan, "p2")).toEqual([
      { tMs: 0, pps: 300 },
      { tMs: 15_000, pps: 3000 },
      { tMs: 30_000, pps: 300 },
      { tMs: 45_000, pps: 825 },
    ]);
  });

  it("measures how long the allocation took to follow a shift", () => {
    // p2 sits at 200m, the shift starts at 15 s, it climbs 200 -> 500 -> 900 -> 1000 and stays.
    const pts: AllocationPoint[] = [{ tMs: 14_900, cpuMillis: { p2: 200 } }];
    const climb = [500, 900, 1000];
    for (const [i, c] of climb.entries()) pts.push({ tMs: 15_000 + i * 100, cpuMillis: { p2: c } });
    for (let t = 15_300; t < 30_000; t += 100) pts.push({ tMs: t, cpuMillis: { p2: 1000 } });
    // settled 1000, start 200: 90 % of the way is 200 + 0.9 * 800 = 920 -> first reached at 15,200 ms
    expect(followMs(pts, plan.phases[1]!)).toBe(200);
    // a phase with no hot partition has nothing to follow
    expect(followMs(pts, plan.phases[3]!)).toBeNull();
    // p2 mean over the phase is close to 1000 (three climbing points among ~150)
    expect(meanAllocation(pts, "p2", 15_000, 30_000)).toBeGreaterThan(980);
  });

  it("reports no follow time when the allocation never moved", () => {
    const flat: AllocationPoint[] = [];
    for (let t = 0; t < 15_000; t += 100) flat.push({ tMs: t, cpuMillis: { p1: 400 } });
    expect(followMs(flat, plan.phases[0]!)).toBeNull();
  });
});

describe("work conservation figures", () => {
  // A cycle of capacity 1700m: host 2 CPUs, 10 % idle; the hog used 1.02 cores, p1 0.5.
  const record = (hostIdle: number | null, hogCores: number, startedAtMs = 0): CycleRecord => ({
    cycle: 1,
    startedAtMs,
    intervalMs: 100,
    capacityCpuMillis: 1700,
    partitions: [
      { id: "p1", cpuCores: 0.5 },
      { id: "hog", cpuCores: hogCores },
    ].map(({ id, cpuCores }) => ({
      id,
      status: "ok" as const,
      throughput: {
        partition: id,
        windowMs: 100,
        offeredPacketsPerSec: 0,
        servedPacketsPerSec: 0,
        droppedPacketsPerSec: 0,
        cpuCores,
        throttledFraction: 0,
        rawVelocityPacketsPerCpuSec: null,
        source: "host" as const,
      },
      decision: null,
      directive: null,
      written: [],
    })),
    host:
      hostIdle === null
        ? null
        : { cpus: 2, idleFraction: hostIdle, busyCores: 2 * (1 - hostIdle), stealFraction: 0 },
    timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 0 },
  });
  const batch = new Set(["hog"]);

  it("host idle from the record's host; batch share = batch CPU used ÷ capacity", () => {
    // 1020m ÷ 1700m = 0.6
    expect(workConservation(record(0.1, 1.02), batch)).toEqual({
      hostIdleFraction: 0.1,
      batchShare: 1020 / 1700,
    });
    // no host reading, no batch partition: both unknown, not 0
    expect(workConservation(record(null, 1.02), new Set())).toEqual({
      hostIdleFraction: null,
      batchShare: null,
    });
  });

  it("averages over cycles, skipping unknown host readings", () => {
    // idle (0.1 + 0.3) / 2 = 0.2 (the null one is skipped); batch (0.34 + 0.68 + 1.02) / 3 / 1.7 = 0.4
    const wc = meanWorkConservation(
      [record(0.1, 0.34), record(null, 0.68), record(0.3, 1.02)],
      batch,
    );
    expect(wc.hostIdleFraction).toBeCloseTo(0.2, 12);
    expect(wc.batchShare).toBeCloseTo(0.4, 12);
    expect(formatWorkConservation(wc)).toBe("host CPU idle 20.0 % · batch used 40.0 % of capacity");
  });

  it("per phase from the summary's points", () => {
    const pts = [
      allocationPoint(record(0.5, 0.17, 1000), 0, batch), // phase 0..2000: idle 0.5, batch 0.1
      allocationPoint(record(0.3, 0.51, 1500), 0, batch), // idle 0.3, batch 0.3
      allocationPoint(record(0.0, 1.7, 2500), 0, batch), // next phase
    ];
    const wc = meanWorkConservationOfPoints(pts, 0, 2000);
    expect(wc.hostIdleFraction).toBeCloseTo(0.4, 12); // (0.5 + 0.3) / 2
    expect(wc.batchShare).toBeCloseTo(0.2, 12); // (0.1 + 0.3) / 2
    expect(meanWorkConservationOfPoints(pts, 5000, 6000)).toEqual({
      hostIdleFraction: null,
      batchShare: null,
    });
  });

  it("summarises every phase: follow time, work conservation, the load seen and the mean allocation", () => {
    const two = demoPlan(["a"], 2000, 1000, 100); // phases "a hot" [0, 1000), "all moderate" [1000, 2000)
    const points: AllocationPoint[] = [
      { tMs: 0, cpuMillis: { a: 100 }, hostIdleFraction: 0.5, batchShare: null },
      { tMs: 500, cpuMillis: { a: 300 }, hostIdleFraction: 0.3, batchShare: null },
      { tMs: 1500, cpuMillis: { a: 500 }, hostIdleFraction: 0.1, batchShare: null },
    ];
    const s = summarisePhases(two, points, [1, 2, 6], (ph) => [
      {
        partition: "a",
        offered: ph.fromMs === 0 ? 1000 : 550,
        served: 500,
        servedRatio: null,
        p99Ms: 4,
      },
    ]);
    // 3 cycles of 1, 2 and 6 ms: mean 3 ms
    expect(s.cycles).toBe(3);
    expect(s.meanCycleMs).toBe(3);
    expect(s.phases.map((ph) => [ph.name, ph.hot, ph.followMs])).toEqual([
      ["a hot", "a", followMs(points, two.phases[0]!)],
      ["all moderate", null, followMs(points, two.phases[1]!)],
    ]);
    // first phase: host idle (0.5 + 0.3) / 2 = 0.4, a's allocation (100 + 300) / 2 = 200m
    expect(s.phases[0]!.hostIdleFraction).toBeCloseTo(0.4, 10);
    expect(s.phases[0]!.partitions).toEqual([
      {
        partition: "a",
        offered: 1000,
        served: 500,
        servedRatio: null,
        p99Ms: 4,
        meanCpuMillis: 200,
      },
    ]);
    // second phase: only the point at 1500 ms (all three points would give 300m)
    expect(s.phases[1]!.partitions[0]!.meanCpuMillis).toBe(500);
    expect(s.phases[1]!.hostIdleFraction).toBeCloseTo(0.1, 10);
    expect(s.phases[1]!.partitions[0]!.offered).toBe(550);
  });
});
