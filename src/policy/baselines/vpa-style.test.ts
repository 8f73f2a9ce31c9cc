import { describe, expect, it } from "vitest";
import type { PolicyState } from "../types.ts";
import { input, spec, tp } from "./test-helpers.ts";
import type { VpaState } from "./vpa-style.ts";
import {
  bucketOf,
  bucketStart,
  confidenceOf,
  histogramPercentile,
  recommend,
  vpaDefaults,
  vpaStyleFastOptions,
  vpaStylePolicy,
} from "./vpa-style.ts";

describe("VPA-style histogram", () => {
  it("uses exponential buckets from 10m with ratio 1.05, and the percentile is the bucket's end", () => {
    // start(i) = 10 * (1.05^i - 1) / 0.05: start(1) = 10, start(2) = 20.5.
    expect(bucketStart(vpaDefaults, 1)).toBeCloseTo(10);
    expect(bucketStart(vpaDefaults, 2)).toBeCloseTo(20.5);
    expect(bucketOf(vpaDefaults, 15)).toBe(1);
    // 9 samples in bucket 1 [10, 20.5) and 1 in bucket 2: p90 is reached in bucket 1 -> its end, 20.5.
    expect(histogramPercentile(vpaDefaults, [0, 9, 1], 0.9)).toBeCloseTo(20.5);
    expect(histogramPercentile(vpaDefaults, [0, 9, 1], 0.95)).toBeCloseTo(
      bucketStart(vpaDefaults, 3),
    );
  });
});

describe("VPA-style recommendation (estimator.go)", () => {
  it("confidence is min(lifespan in days, samples ÷ 1,440)", () => {
    // 6 samples, one a minute, over 5 minutes: lifespan 5 / 1,440 = 0.003472 days, amount 6 / 1,440.
    const s = { firstSampleMs: 60_000, lastSampleMs: 360_000, samples: 6 };
    expect(confidenceOf(vpaDefaults, s)).toBeCloseTo(5 / 1440, 8);
    // One sample: lifespan 0 -> confidence 0.
    expect(confidenceOf(vpaDefaults, { ...s, lastSampleMs: 60_000, samples: 1 })).toBe(0);
  });

  it("scales the bounds by the confidence multipliers: 5 minutes of history -> lower × 0.6", () => {
    // All weight in bucket 35 (950m: floor(ln(1 + 950 × 0.05 / 10) / ln 1.05) = 35), whose end is
    // start(36) = 10 × (1.05^36 − 1) / 0.05 = 958.36.
    const histogram = Array.from({ length: 36 }, (_, i) => (i === 35 ? 6 : 0));
    const r = recommend(vpaDefaults, {
      histogram,
      firstSampleMs: 60_000,
      lastSampleMs: 360_000,
      samples: 6,
    });
    const end = bucketStart(vpaDefaults, 36);
    expect(end).toBeCloseTo(958.36, 1);
    // target = p90 × 1.15 = 1,102.1
    expect(r.targetCpuMillis).toBeCloseTo(end * 1.15, 6);
    // lower = p50 × 1.15 × (1 + 0.001 / 0.003472)^−2 = 1,102.1 × 0.6027 = 664.2 (recommender.go: "5m history: *0.6")
    expect(r.lowerCpuMillis / r.targetCpuMillis).toBeCloseTo((1 + 0.001 / (5 / 1440)) ** -2, 6);
    expect(r.lowerCpuMillis / r.targetCpuMillis).toBeCloseTo(0.6027, 3);
    // upper = p95 × 1.15 × (1 + 1 / 0.003472) = 1,102.1 × 289
    expect(r.upperCpuMillis / r.targetCpuMillis).toBeCloseTo(289, 6);
  });

  it("without history the bounds are [0 (floored at 25m), ∞]: the updater leaves the request alone", () => {
    const r = recommend(vpaDefaults, {
      histogram: [0, 1],
      firstSampleMs: 0,
      lastSampleMs: 0,
      samples: 1,
    });
    expect(r.lowerCpuMillis).toBe(25);
    expect(r.upperCpuMillis).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("VPA-style policy", () => {
  const two = [spec("a"), spec("b")];

  it("starts every partition at an equal share as its request: weight in proportion, no limit", () => {
    const p = vpaStylePolicy();
    const out = p.step(input(0, two, [], 2000), p.initialState());
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([1000, 1000]);
    expect(out.directives[0]).toMatchObject({
      capCpuMillis: Number.POSITIVE_INFINITY,
      capReason: null,
      weight: 100,
      idle: false,
    });
  });

  it("a Guaranteed pod (limit = request) gets the request as a hard cap", () => {
    const p = vpaStylePolicy({ limitToRequestRatio: 1 });
    const out = p.step(input(0, two, [], 2000), p.initialState());
    expect(out.directives[0]).toMatchObject({ capCpuMillis: 1000, capReason: "capped" });
  });

  it("at VPA's real cadence a partition using 1.9 cores on a 1,000m request keeps it for minutes", () => {
    const p = vpaStylePolicy();
    let state: PolicyState = p.initialState();
    const changedAt: number[] = [];
    for (let t = 0; t <= 6 * 60_000; t += 100) {
      const out = p.step(input(t, two, [tp("a", 1.9), tp("b", 0.1)], 2000), state);
      state = out.state;
      if (out.decisions[0]!.previousCpuMillis !== out.decisions[0]!.cpuMillis) changedAt.push(t);
    }
    // Loops at 60, 120, ... 360 s. At the k-th loop confidence = (k − 1) / 1,440 and the lower
    // bound is 1,900's bucket end (bucket 48, start(49) = 1,984.3) × 1.15 = 2,282 × (1 + 1.44 /
    // (k − 1))^−2: × 0.168, 0.338, 0.457 at k = 2, 3, 4 = 383, 771, 1,042m. So the first resize
    // is at k = 4 (240 s), to the target (2,282), capped at the partition's max (2,000m).
    expect(changedAt).toEqual([240_000]);
    expect(state.partitions.a!.cpuMillis).toBe(2000);
    // b (100m on a 1,000m request) is above its upper bound only when p95 × 1.15 × (1 + 1/c) < 1,000:
    // with c ≤ 5 / 1,440 that multiplier is ≥ 289 -> never within minutes.
    expect(state.partitions.b!.cpuMillis).toBe(1000);
  });

  it("the 60× variant (a loop every second) shrinks an over-provisioned partition within a minute of simulated time", () => {
    const p = vpaStylePolicy(vpaStyleFastOptions);
    let state: PolicyState = p.initialState();
    for (let t = 0; t <= 60_000; t += 100) {
      state = p.step(input(t, two, [tp("a", 1.5), tp("b", 0.1)], 2000), state).state;
    }
    // b: 100m is in bucket floor(ln(1.5) / ln 1.05) = 8, end start(9) = 110.27; target 126.8.
    // Upper bound 110.27 × 1.15 × (1 + 1 / c), c = (k − 1) / 1,440 after k loops: below 1,000
    // once 1 + 1,440 / (k − 1) < 7.89, i.e. from k = 211 — not within 60 loops.
    expect(state.partitions.b!.cpuMillis).toBe(1000);
    // a: 1,500m, end of bucket 43 = 1,499.9... × 1.15 = 1,725 target; lower bound crosses 1,000 when
    // (1 + 1.44 / (k − 1))^−2 > 1,000 / (p50 × 1.15), within the first few loops.
    expect(state.partitions.a!.cpuMillis).toBeGreaterThan(1500);
    expect(state.partitions.a!.cpuMillis).toBeLessThanOrEqual(1800);
  });
  it("weighs every CPU sample the same (VPA ≥ 1.4.0); sampleWeightByRequest weighs it by the request, as before", () => {
    // a at 1.9 cores on a 1,000m request: loops at 60 … 360 s, resized to 2,000m at 240 s (test above).
    const totalWeight = (p: ReturnType<typeof vpaStylePolicy>) => {
      let state: PolicyState = p.initialState();
      for (let t = 0; t <= 6 * 60_000; t += 100)
        state = p.step(input(t, two, [tp("a", 1.9), tp("b", 0.1)], 2000), state).state;
      expect(state.partitions.a!.cpuMillis).toBe(2000);
      return (state as VpaState).vpa.byPartition.a!.histogram.reduce((x, w) => x + w, 0);
    };
    // Six samples of minSampleWeight 0.1 (× 2^(age / 24 h) ≈ 1 over 6 minutes).
    expect(totalWeight(vpaStylePolicy())).toBeCloseTo(6 * 0.1, 2);
    // Before 1.4.0: the four samples up to 240 s weigh the 1,000m request, the two after it 2,000m.
    expect(totalWeight(vpaStylePolicy({ sampleWeightByRequest: true }))).toBeCloseTo(
      4 * 1 + 2 * 2,
      1,
    );
  });

  it("resizes a pod past PodLifetimeUpdateThreshold when the target is 10 % or more from its request", () => {
    expect(vpaDefaults.podLifetimeUpdateThresholdMs).toBe(12 * 3600_000);
    expect(vpaDefaults.minChangePriority).toBe(0.1);
    expect(vpaStyleFastOptions.podLifetimeUpdateThresholdMs).toBe(12 * 60_000);
    // Usage 0.2 cores for 3 s, 0.9 for 2 s, over and over: p50 in 0.2's bucket (end 215.8m), p90
    // and p95 in 0.9's (bucket 34, end start(35) = 903.2m), so target 903.2 × 1.15 = 1,039m,
    // lower bound ≤ 215.8 × 1.15 = 248m, upper bound ≥ the target: the initial 800m request stays
    // within the bounds, 30 % below the target. Only the 12-hour rule (12 minutes at 60×) moves it.
    const one = [spec("a")];
    const usage = (t: number) => (Math.floor((t - 1) / 1000) % 5 < 3 ? 0.2 : 0.9);
    const run = (p: ReturnType<typeof vpaStylePolicy>) => {
      let state: PolicyState = p.initialState();
      const changes: [number, number][] = [];
      for (let t = 0; t <= 725_000; t += 100) {
        const out = p.step(input(t, one, [tp("a", usage(t))], 800), state);
        state = out.state;
        const d = out.decisions[0]!;
        if (d.previousCpuMillis !== d.cpuMillis) changes.push([t, d.cpuMillis]);
      }
      return changes;
    };
    expect(run(vpaStylePolicy(vpaStyleFastOptions))).toEqual([[720_000, 1039]]);
    expect(
      run(vpaStylePolicy({ ...vpaStyleFastOptions, podLifetimeUpdateThresholdMs: Infinity })),
    ).toEqual([]);
  });
});
