import { describe, expect, it } from "vitest";
import {
  type AllocationPoint,
  demoPlan,
  demoRate,
  demoTrace,
  followMs,
  meanAllocation,
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
