import { describe, expect, it } from "vitest";
import { histogramToB64, newHistogram } from "../src/testbed/load-stats.ts";
import { fmtPooled, pooledFigure, pooledWorstRatio } from "./conservation-pooled.ts";
import type { RunOutcome } from "./conservation-run.ts";

/** A run whose partitions answered `n` requests each at the given latencies (ms, cycled). */
function run(rep: number, latMs: Record<string, number[]>, n = 100): RunOutcome {
  const latencyB64: Record<string, string> = {};
  for (const [name, xs] of Object.entries(latMs)) {
    const h = newHistogram(3);
    for (let i = 0; i < n; i++) h.recordValue(Math.round(xs[i % xs.length]! * 1000));
    latencyB64[name] = histogramToB64(h);
    h.destroy();
  }
  return { rep, latencyB64 } as unknown as RunOutcome;
}
/** HdrHistogram at 3 significant digits reports a value's bucket's top: 3 ms reads 3.001. */
const near = (x: number, ms: number) => expect(x).toBeCloseTo(ms, 2);
/** `k` of 100 requests at `slowMs`, the rest at `fastMs`. */
const tail = (fastMs: number, slowMs: number, k: number) => [
  ...Array.from({ length: 100 - k }, () => fastMs),
  ...Array.from({ length: k }, () => slowMs),
];

describe("conservation-real: p99 ratio from every repetition's requests pooled", () => {
  it("divides the pooled p99 with the hog by the pooled p99 without, worst partition", () => {
    // Reference: every repetition 99 requests at 1 ms and one at 10 ms (p99 1 ms each, pooled
    // p99 1 ms). With the hog: a has 2 requests of 100 at 3 ms in every repetition (p99 3 ms);
    // b is as without.
    const refs = [1, 2, 3].map((r) => run(r, { a: tail(1, 10, 1), b: tail(1, 10, 1) }));
    const runs = [1, 2, 3].map((r) => run(r, { a: tail(1, 3, 2), b: tail(1, 10, 1) }));
    const p = pooledWorstRatio(runs, refs, ["a", "b"])!;
    expect(p.reps).toBe(3);
    near(p.perPartition.a!.withMs, 3);
    near(p.perPartition.a!.withoutMs, 1);
    near(p.perPartition.b!.withMs, 1);
    near(p.perPartition.b!.withoutMs, 1);
    near(p.value, 3);
    near(p.leaveOneOut![0], 3);
    near(p.leaveOneOut![1], 3);
  });

  it("is not the median of the repetitions' ratios: one repetition's tail counts in the pool", () => {
    // The reference answers everything in 1 ms. With the hog, repetition 1 had 6 of 100
    // requests at 5 ms (its p99 5 ms), repetitions 2 and 3 none: per repetition the ratios are
    // 5, 1 and 1, median 1. Pooled, 6 of 300 (2 %) are slow, so the p99 is 5 ms: ratio 5.
    const refs = [1, 2, 3].map((r) => run(r, { a: [1] }));
    const runs = [run(1, { a: tail(1, 5, 6) }), run(2, { a: [1] }), run(3, { a: [1] })];
    const perRep = runs.map((r, i) => pooledWorstRatio([r], [refs[i]!], ["a"])!.value);
    near(perRep[0]!, 5);
    near(perRep[1]!, 1);
    near(perRep[2]!, 1);
    const p = pooledWorstRatio(runs, refs, ["a"])!;
    near(p.perPartition.a!.withMs, 5);
    near(p.perPartition.a!.withoutMs, 1);
    near(p.value, 5);
    // leaving repetition 1 out leaves no slow request (1); leaving out 2 or 3 leaves 6 of 200
    near(p.leaveOneOut![0], 1);
    near(p.leaveOneOut![1], 5);
  });

  it("pairs runs with their own repetition's reference and leaves out what lacks histograms", () => {
    const refs = [run(1, { a: [1] }), run(2, { a: [4] })];
    // repetition 3 has no reference; repetition 2's run has no histograms (an older run's JSON)
    const runs = [run(1, { a: [2] }), { rep: 2 } as RunOutcome, run(3, { a: [9] })];
    const p = pooledWorstRatio(runs, refs, ["a"])!;
    expect(p.reps).toBe(1);
    near(p.value, 2);
    expect(p.leaveOneOut).toBeNull(); // under 3 repetitions
    expect(pooledWorstRatio([{ rep: 1 } as RunOutcome], refs, ["a"])).toBeNull();
  });

  it("gives no verdict when a partition answered nothing on one side", () => {
    const refs = [run(1, { a: [1], b: [1] })];
    const runs = [run(1, { a: [2], b: [5] }, 100)];
    // b answered nothing with the hog: an empty histogram
    const empty = newHistogram(3);
    runs[0]!.latencyB64!.b = histogramToB64(empty);
    empty.destroy();
    const p = pooledWorstRatio(runs, refs, ["a", "b"])!;
    expect(p.perPartition.b!.withMs).toBeNaN();
    expect(p.value).toBeNaN();
  });

  it("formats a pooled ratio as a cell and as a figure, with or without the target", () => {
    const p = {
      value: 1.034,
      leaveOneOut: [0.936, 1.333] as [number, number],
      reps: 5,
      perPartition: {},
    };
    expect(fmtPooled(p)).toBe("1.03 [0.94–1.33]");
    expect(fmtPooled({ ...p, leaveOneOut: null })).toBe("1.03");
    expect(fmtPooled(null)).toBe("–");
    expect(pooledFigure("x", p, true)).toEqual([
      {
        name: "x",
        value: 1.03,
        reps: 5,
        range: [0.94, 1.33],
        unit: "x",
        target: "<= 1.2",
        meets: true,
      },
    ]);
    expect(pooledFigure("x", { ...p, value: 1.25, leaveOneOut: null }, false)).toEqual([
      { name: "x", value: 1.25, reps: 5, unit: "x" },
    ]);
    expect(pooledFigure("x", null, true)).toEqual([]);
  });
});
