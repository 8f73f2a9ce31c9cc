import { describe, expect, it } from "vitest";
import {
  badOption,
  generatorCost,
  histogramToB64,
  newHistogram,
  pooledLatency,
  summarize,
} from "./load-stats.ts";

describe("load stats", () => {
  it("summarises a latency histogram in ms, and nothing as nulls", () => {
    const h = newHistogram(3);
    // 10, 20, …, 1000 µs: below 2048 µs the 3-digit histogram holds every value exactly
    for (let i = 1; i <= 100; i++) h.recordValue(i * 10);
    const s = summarize(h);
    expect(s.count).toBe(100);
    expect(s.p50Ms).toBe(0.5);
    expect(s.p99Ms).toBe(0.99);
    expect(s.maxMs).toBe(1);
    // mean of 10..1000 µs = 505 µs
    expect(s.meanMs).toBe(0.505);
    h.destroy();
    const empty = newHistogram(2);
    expect(summarize(empty)).toEqual({
      count: 0,
      p50Ms: null,
      p90Ms: null,
      p99Ms: null,
      p999Ms: null,
      maxMs: null,
      meanMs: null,
    });
    empty.destroy();
  });

  it("pools runs' histograms: the percentile of every latency together, not of the runs' percentiles", () => {
    // Run 1: 99 requests at 1 ms and one at 50 ms; run 2: 100 requests at 2 ms. Each run's p99
    // is 1 ms and 2 ms; of the 200 together, the 198th is 2 ms and the 199th 50 ms — so the
    // pooled p99 (the 198th) is 2 ms and the pooled p99.9 is 50 ms, neither a mean of the two.
    const a = newHistogram(3);
    for (let i = 0; i < 99; i++) a.recordValue(1000);
    a.recordValue(50_000);
    const b = newHistogram(3);
    for (let i = 0; i < 100; i++) b.recordValue(2000);
    const encoded = [histogramToB64(a), histogramToB64(b)];
    expect(summarize(a).p99Ms).toBe(1);
    expect(summarize(b).p99Ms).toBe(2);
    a.destroy();
    b.destroy();
    const pooled = pooledLatency(encoded);
    expect(pooled.count).toBe(200);
    expect(pooled.p99Ms).toBe(2);
    expect(pooled.p999Ms).toBeCloseTo(50, 1);
    expect(pooled.maxMs).toBeCloseTo(50, 1);
    expect(pooledLatency([]).p99Ms).toBeNull();
    expect(() => pooledLatency(["not a histogram"])).toThrow();
  });

  it("the generator's CPU cost: cores over the wall time, µs per 1,000 packets", () => {
    // 30 ms user + 10 ms system over 400 ms: 0.1 cores; 40,000 µs / 2,000 packets × 1000 = 20,000
    expect(generatorCost({ user: 30_000, system: 10_000 }, 400, 2000)).toEqual({
      wallMs: 400,
      cpuUserMs: 30,
      cpuSystemMs: 10,
      cpuCores: 0.1,
      cpuMicrosPer1000Packets: 20_000,
    });
    expect(generatorCost({ user: 1000, system: 0 }, 100, 0).cpuMicrosPer1000Packets).toBeNull();
  });

  it("an option error names the field, the rule and the value", () => {
    expect(() => badOption("durationMs", "must be > 0", -5)).toThrow(
      "'durationMs' must be > 0: current value is -5",
    );
  });
});
