import { describe, expect, it } from "vitest";
import {
  hogRatioWhy,
  type RealOutcome,
  realScenarios,
  worstPartitionWhy,
} from "./scenarios-real-sizing.ts";

const outcome = (o: Partial<RealOutcome>): RealOutcome => ({
  served: 1,
  servedBy: [1, 1, 1],
  sentOfScheduled: 1,
  lost: 0,
  p99s: [5, 5, 5],
  worstP99: 5,
  hogCores: 1,
  writes: 0,
  generatorCores: 0.2,
  cpuCores: [0.2, 0.3, 0.5],
  netCpuDelay: 0.3,
  hogCappedFraction: 0,
  weights: [100, 100, 100],
  ...o,
});

describe("scenarios-real sizing", () => {
  it("turns the scenarios' cores into packets/s at the probed rate", () => {
    const [hog, step] = realScenarios(false, 10_000);
    expect(hog!.schedules).toEqual({
      a: { kind: "constant", pps: 2300 },
      b: { kind: "constant", pps: 3400 },
      c: { kind: "constant", pps: 8000 },
    });
    expect(step!.schedules.a).toEqual({ kind: "step", fromPps: 1100, toPps: 7100, atMs: 6000 });
    expect(hog!.durationMs).toBe(16_000);
  });

  it("says what plain CFS left c, from the runs' counters, and whether c was offered more", () => {
    // plain CFS: generator 0.2, a + b 0.5 -> c and the hog split (2 - 0.7) / 2 = 0.65 cores
    const none = [1, 2, 3].map(() =>
      outcome({ cpuCores: [0.2, 0.3, 0.6], servedBy: [1, 1, 0.9], p99s: [5, 5, 400] }),
    );
    const weir = [1, 2, 3].map(() => outcome({ cpuCores: [0.2, 0.3, 0.8], p99s: [5, 5, 8] }));
    const [why, worst, fixed] = hogRatioWhy({
      cpus: 2,
      saturationPps: 10_000,
      offeredCores: [0.23, 0.34, 0.8],
      fixedPps: [600, 1000, 2200],
      weir,
      none,
      ratio: { median: 50, min: 40, max: 60 },
    });
    expect(why).toContain("(2 − 0.20 − 0.50) ÷ 2 = 0.65 cores each");
    expect(why).toContain("c was offered 0.8 cores, more than that");
    expect(why).toContain("Plain CFS: c used 0.60 cores, served 90.0 %");
    expect(why).toContain("p99 c 400.0 ms");
    expect(why).toContain("weir: c used 0.80 cores");
    expect(worst).toContain("(worst: c)");
    // the fixed rates at 10,000 per core: 0.06, 0.10, 0.22 -> c's is less than the 0.65 left
    expect(fixed).toContain("are 0.06, 0.10, 0.22 cores, 0.38 together");
    expect(fixed).toContain("c's 0.22 is less than the 0.65 cores");
  });

  it("names each policy's worst partition, what each partition served, and the weights", () => {
    // the shape of the 2026-12-02 run: c starved and dropping under plain CFS, bounded p99;
    // under weir c served, a and b waited behind c's larger weight
    const none = [outcome({ servedBy: [1, 1, 0.705], p99s: [26.2, 28.7, 61.8] })];
    const weir = [
      outcome({ servedBy: [1, 1, 0.988], p99s: [36.1, 35.6, 29.5], weights: [420, 560, 1290] }),
    ];
    const s = worstPartitionWhy(weir, none);
    expect(s).toContain("served 100.0 / 100.0 / 70.5 % of what they were sent under plain CFS");
    expect(s).toContain("and 100.0 / 100.0 / 98.8 % under weir");
    expect(s).toContain("26.2 / 28.7 / 61.8 ms under plain CFS (worst: c)");
    expect(s).toContain("36.1 / 35.6 / 29.5 ms under weir (worst: a)");
    expect(s).toContain("100 : 100 : 100 under plain CFS and 420 : 560 : 1290 under weir");
  });

  it("says nothing without both policies' runs", () => {
    expect(
      hogRatioWhy({
        cpus: 2,
        saturationPps: 1,
        offeredCores: [1],
        fixedPps: [1],
        weir: [],
        none: [outcome({})],
        ratio: null,
      }),
    ).toEqual([]);
  });
});
