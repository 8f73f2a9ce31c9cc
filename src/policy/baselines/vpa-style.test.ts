import { describe, expect, it } from "vitest";
import type { PolicyState } from "../types.ts";
import { input, spec, tp } from "./test-helpers.ts";
import {
  bucketOf,
  bucketStart,
  histogramPercentile,
  vpaDefaults,
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

describe("VPA-style policy", () => {
  const specs = [spec("a"), spec("b")];

  it("starts at an equal share and holds it until the updater's interval has passed", () => {
    const p = vpaStylePolicy({ updateIntervalMs: 1000 });
    let state: PolicyState = p.initialState();
    let out = p.step(input(0, specs, [], 2000), state);
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([1000, 1000]);
    // Request and limit move together: a hard cap at the recommendation, weight from the request.
    expect(out.directives[0]).toMatchObject({
      capCpuMillis: 1000,
      capReason: "capped",
      weight: 100,
      burstCpuMillis: 0,
      idle: false,
    });
    state = out.state;
    for (let t = 100; t < 1000; t += 100) {
      out = p.step(input(t, specs, [tp("a", 0.2), tp("b", 0.9)], 2000), state);
      state = out.state;
      expect(out.directives.map((d) => d.cpuMillis)).toEqual([1000, 1000]);
    }
  });

  it("on update, resizes a partition outside [p50, p95] x 1.15 to p90 x 1.15", () => {
    const p = vpaStylePolicy({ updateIntervalMs: 1000 });
    let state: PolicyState = p.initialState();
    let out = p.step(input(0, specs, [], 2000), state);
    state = out.state;
    for (let t = 100; t <= 1000; t += 100) {
      out = p.step(input(t, specs, [tp("a", 0.2), tp("b", 0.95)], 2000), state);
      state = out.state;
    }
    // a used 200m every cycle: 200m is in bucket floor(ln(1 + 200 * 0.05 / 10) / ln 1.05) = 14,
    // whose end is start(15) = 10 * (1.05^15 - 1) / 0.05 = 215.79; x 1.15 = 248.
    // b used 950m: bucket floor(ln(5.75) / ln 1.05) = 35, end start(36) = 958.36; x 1.15 = 1,102.
    expect(out.directives.map((d) => d.cpuMillis)).toEqual([248, 1102]);
    // Both were 1,000m: a's 1,000 > upper (also 248: one bucket), b's 1,000 < lower (1,102) -> both resized.
    expect(out.decisions[0]!.why).toMatch(/outside/);
  });

  it("cannot see demand above its own cap: a saturated partition grows only by the margin per update", () => {
    const p = vpaStylePolicy({ updateIntervalMs: 1000 });
    let state: PolicyState = p.initialState();
    state = p.step(input(0, [spec("a"), spec("b"), spec("c"), spec("d")], [], 2000), state).state;
    // 4 partitions: initial 500m each. a's real demand is 1,500m but it can use only its 500m cap.
    let caps: number[] = [];
    for (let t = 100; t <= 3000; t += 100) {
      const capA = state.partitions.a?.cpuMillis ?? 500;
      const out = p.step(
        input(
          t,
          [spec("a"), spec("b"), spec("c"), spec("d")],
          [tp("a", Math.min(1.5, capA / 1000))],
          2000,
        ),
        state,
      );
      state = out.state;
      if (t % 1000 === 0) caps.push(out.directives[0]!.cpuMillis);
    }
    caps = caps.map(Math.round);
    // Each update: end of usage's bucket x 1.15, so about +15-20 % per minute-of-updates, not a jump to 1,500m.
    expect(caps[0]).toBeGreaterThan(500);
    expect(caps[0]).toBeLessThan(650);
    expect(caps[1]).toBeGreaterThan(caps[0]!);
    expect(caps[2]).toBeLessThan(1000);
  });
});
