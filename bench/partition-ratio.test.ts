import { describe, expect, it } from "vitest";
import { partitionMedianRatio, ratiosOf, worstRatioOf } from "./partition-ratio.ts";

const run = (rep: number, a: number, b: number) => ({ rep, p99Ms: { a, b } });

describe("the p99 ratio read per partition", () => {
  it("divides each partition's p99 by the same repetition's reference", () => {
    const refs = [run(0, 2, 4), run(1, 1, 1)];
    expect(ratiosOf(run(0, 3, 2), refs, ["a", "b"])).toEqual([1.5, 0.5]);
    expect(worstRatioOf(run(0, 3, 2), refs, ["a", "b"])).toBe(1.5);
    // no reference in that repetition: no ratio
    expect(ratiosOf(run(2, 3, 2), refs, ["a", "b"]).every(Number.isNaN)).toBe(true);
  });

  it("takes each partition's median over the repetitions and reports the largest", () => {
    const refs = [run(0, 1, 1), run(1, 1, 1), run(2, 1, 1)];
    // a: 1.0, 1.3, 1.1 → median 1.1; b: 0.9, 1.0, 1.5 → median 1.0
    const runs = [run(0, 1.0, 0.9), run(1, 1.3, 1.0), run(2, 1.1, 1.5)];
    const r = partitionMedianRatio(runs, refs, ["a", "b"]);
    expect(r).toMatchObject({ partition: "a", min: 1.0, max: 1.3, n: 3 });
    expect(r?.median).toBeCloseTo(1.1, 12);
    // the worst partition of each repetition (1.0, 1.3, 1.5) has a median of 1.3: above both
    const perRep = runs.map((x) => worstRatioOf(x, refs, ["a", "b"])).sort((x, y) => x - y);
    expect(perRep[1]).toBeCloseTo(1.3, 12);
  });

  it("leaves out repetitions without a reference, and gives null when none has one", () => {
    const refs = [run(0, 1, 1)];
    const r = partitionMedianRatio([run(0, 2, 1), run(5, 9, 9)], refs, ["a", "b"]);
    expect(r).toMatchObject({ partition: "a", median: 2, n: 1 });
    expect(partitionMedianRatio([run(5, 9, 9)], refs, ["a", "b"])).toBeNull();
  });
});
