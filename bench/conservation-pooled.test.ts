import { describe, expect, it } from "vitest";
import { histogramToB64, newHistogram } from "../src/testbed/load-stats.ts";
import { pooledWorstRatio } from "./conservation-pooled.ts";
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

  it("is not the median of the repetitions' ratios: one slow reference moves it less", () => {
    // Repetition 3's reference had 2 of 100 requests at 9 ms (its p99 9 ms), the others none.
    // Per repetition the ratios are 2, 2 and 2/9; pooled, the reference's 300 requests have 2
    // slow ones (under 1 %), so its p99 is 1 ms and the ratio 2.
    const refs = [
      run(1, { a: tail(1, 9, 0) }),
      run(2, { a: tail(1, 9, 0) }),
      run(3, { a: tail(1, 9, 2) }),
    ];
    const runs = [1, 2, 3].map((r) => run(r, { a: tail(1, 2, 2) }));
    const p = pooledWorstRatio(runs, refs, ["a"])!;
    near(p.perPartition.a!.withMs, 2);
    near(p.perPartition.a!.withoutMs, 1);
    near(p.value, 2);
    // leaving out repetition 1 or 2 leaves 2 slow of 200 (1 %): the p99 is then still 1 ms;
    // leaving out 3 removes them — the ratio stays 2 every way
    near(p.leaveOneOut![0], 2);
    near(p.leaveOneOut![1], 2);
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
});
