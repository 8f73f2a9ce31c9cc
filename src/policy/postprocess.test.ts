// Post-processors: dead-band, shrink limit, bounds, whole millicores, and the final re-check.
import { describe, expect, it } from "vitest";
import {
  type AllocationFrame,
  deadband,
  defaultPostProcessors,
  enforceBounds,
  limitShrink,
  Marks,
  type PostProcessor,
  runPostProcessors,
  toWholeMillis,
} from "./postprocess.ts";
import { seeded } from "./test-fixtures.ts";

function frame(
  over: Partial<Omit<AllocationFrame, "ideal" | "lo" | "hi" | "prev" | "prevNeed">> & {
    ideal: number[];
    lo?: number[];
    hi?: number[];
    prev?: number[];
    prevNeed?: number[];
  },
  n = over.ideal.length,
): AllocationFrame {
  const f = (xs: number[] | Float64Array | undefined, fill: number): Float64Array =>
    xs ? Float64Array.from(xs) : new Float64Array(n).fill(fill);
  return {
    capacityCpuMillis: over.capacityCpuMillis ?? 2000,
    deadbandCpuMillis: over.deadbandCpuMillis ?? 20,
    maxShrinkFraction: over.maxShrinkFraction ?? 0.1,
    lo: f(over.lo, 0),
    hi: f(over.hi, 4000),
    prev: f(over.prev, Number.NaN),
    prevNeed: f(over.prevNeed, Number.NaN),
    ideal: Float64Array.from(over.ideal),
    importance: over.importance ?? new Uint8Array(n).fill(3),
  };
}

const run = (
  p: PostProcessor,
  f: AllocationFrame,
  alloc: number[] = Array.from(f.ideal),
): number[] => {
  const out = new Float64Array(alloc.length);
  p.apply(f, Float64Array.from(alloc), out);
  return Array.from(out);
};

describe("deadband", () => {
  it("keeps the previous value when the wanted change is smaller than the band", () => {
    // band 20m (1 % of 2,000m): 500 → 515 is 15m: kept at 500; 500 → 520 is 20m: made
    const f = frame({ ideal: [515, 520, 300], prev: [500, 500, Number.NaN] });
    expect(run(deadband, f)).toEqual([500, 520, 300]); // no previous value: nothing to keep
  });
});

describe("limitShrink", () => {
  it("lets what a partition needed shrink by at most maxShrinkFraction a cycle", () => {
    // needed 1,000 of its 1,000: may drop to 1,000 × 0.9 = 900, not to 400
    const f = frame({ ideal: [400], prev: [1000], prevNeed: [1000] });
    expect(run(limitShrink, f)).toEqual([900]);
  });

  it("does not protect capacity that was only borrowed from the left-over", () => {
    // had 1,000 but needed 300 (700 was left-over): floor is min(1000, 300) × 0.9 = 270 < 400
    const f = frame({ ideal: [400], prev: [1000], prevNeed: [300] });
    expect(run(limitShrink, f)).toEqual([400]);
  });

  it("lets allocations grow without limit", () => {
    const f = frame({ ideal: [3000], prev: [100], prevNeed: [100] });
    expect(run(limitShrink, f)).toEqual([3000]);
  });
});

describe("enforceBounds", () => {
  it("clamps into [min, max]", () => {
    const f = frame({ ideal: [50, 900], lo: [100, 0], hi: [4000, 800] });
    expect(run(enforceBounds, f)).toEqual([100, 800]);
  });

  it("takes back growth, least important first, when smoothing pushed the sum over capacity", () => {
    // capacity 1,000. A (importance 1) grew 300 → 600; B (importance 5) grew 200 → 300;
    // C (importance 3) was held at 450 by the shrink limit. Sum 1,350: 350 over.
    // Importance 5 first: B gives back its 100 of growth (→ 200), 250 still over;
    // importance 3: C did not grow; importance 1: A gives 250 of its 300 growth (→ 350).
    const f = frame({
      capacityCpuMillis: 1000,
      ideal: [600, 300, 100],
      prev: [300, 200, 500],
      importance: Uint8Array.from([1, 5, 3]),
    });
    expect(run(enforceBounds, f, [600, 300, 450])).toEqual([350, 200, 450]);
  });

  it("takes only the excess from a grower when a shrinker of the same level is held above its ideal", () => {
    // src/demo/vm.test.ts's idealised phase switch: capacity 2,000, both importance 2. p1's traffic
    // came: 400 → ideal 1,000 (its tier share); p2's left: 1,600 → ideal 1,000, held at
    // 1,440 by the shrink limit. Sum 2,440: 440 over, taken from p1's 600 of growth → 560.
    // p2's fall is not growth: counted as −160 in the level's growth (600 − 160 = 440), it
    // took all of p1's growth (→ 400) and left 160m of the capacity to nobody.
    const f = frame({
      capacityCpuMillis: 2000,
      ideal: [1000, 1000],
      prev: [400, 1600],
      importance: Uint8Array.from([2, 2]),
    });
    expect(run(enforceBounds, f, [1000, 1440])).toEqual([560, 1440]);
  });

  it("cuts everyone above their floor in proportion when growth is not enough (capacity fell)", () => {
    // capacity fell to 600; nobody grew. Above-floor: 400 − 100 = 300 and 500 − 100 = 400;
    // 300 over → each keeps (1 − 300/700) of its part above the floor:
    // 100 + 300 × 4/7 = 271.43, 100 + 400 × 4/7 = 328.57 (sum 600)
    const f = frame({
      capacityCpuMillis: 600,
      ideal: [400, 500],
      prev: [400, 500],
      lo: [100, 100],
    });
    const out = run(enforceBounds, f);
    expect(out[0]).toBeCloseTo(271.4286, 3);
    expect(out[1]).toBeCloseTo(328.5714, 3);
  });
});

describe("toWholeMillis", () => {
  it("rounds down, forgiving float noise", () => {
    const f = frame({ ideal: [722.63, 99.99999999, 100] });
    expect(run(toWholeMillis, f)).toEqual([722, 100, 100]);
  });
});

describe("runPostProcessors", () => {
  it("notes which processor changed whom", () => {
    const f = frame({ ideal: [515, 400], prev: [500, 1000], prevNeed: [500, 1000] });
    const { alloc, marks } = runPostProcessors(f);
    expect(Array.from(alloc)).toEqual([500, 900]);
    expect(marks[0]).toBe(Marks.deadband);
    expect(marks[1]).toBe(Marks.shrinkLimited);
  });

  it("repairs a custom list that breaks a bound: safety beats smoothness", () => {
    const doubler: PostProcessor = {
      name: "doubler",
      flag: 0,
      apply: (_f, alloc, out) => {
        for (let i = 0; i < alloc.length; i++) out[i] = alloc[i]! * 2 + 0.5;
      },
    };
    // ideal 600 + 700 = 1,300 ≤ 1,500; doubled 1,200.5 + 1,400.5 is over capacity and not whole
    const f = frame({ capacityCpuMillis: 1500, ideal: [600, 700], hi: [1000, 4000] });
    const { alloc, marks } = runPostProcessors(f, [doubler]);
    // clamp A to max 1,000; growth over "previous" (none: its min 0) cut in proportion:
    // 1,000 + 1,400.5 = 2,400.5, 900.5 over; each keeps 1 − 900.5/2400.5 = 0.62487 of itself
    // → 624.87 and 875.13 → floored 624 and 875 (sum 1,499 ≤ 1,500)
    expect(Array.from(alloc)).toEqual([624, 875]);
    expect(marks[0]! & Marks.boundsFixed).toBe(Marks.boundsFixed);
  });

  it("runs the default list in two fused passes with the values and marks of one processor at a time (random frames)", () => {
    const rnd = seeded(91);
    let excessFrames = 0;
    let marked = 0;
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(rnd() * 60);
      const num = (scale: number) => Math.floor(rnd() * scale) + (rnd() < 0.5 ? rnd() : 0);
      const lo = Array.from({ length: n }, () => num(100));
      const hi = lo.map((l) => l + num(3000));
      const pick = (xs: number[], miss: number) => xs.map((x) => (rnd() < miss ? Number.NaN : x));
      const f = frame({
        // sometimes more is ideal than there is capacity (the bounds' take-back runs)
        capacityCpuMillis: Math.floor(n * (200 + rnd() * 1200)),
        deadbandCpuMillis: rnd() < 0.2 ? 0 : 5 + rnd() * 40,
        maxShrinkFraction: rnd() * 0.3,
        ideal: hi.map((h, i) => (rnd() < 0.05 ? lo[i]! - 1 : lo[i]! + rnd() * (h - lo[i]!))),
        lo,
        hi,
        prev: pick(
          hi.map((h) => rnd() * h * 1.2),
          0.2,
        ),
        prevNeed: pick(
          hi.map((h) => rnd() * h),
          0.3,
        ),
        importance: Uint8Array.from({ length: n }, () => 1 + Math.floor(rnd() * 5)),
      });
      const fused = runPostProcessors(f, defaultPostProcessors);
      // the same processors as another list: run one at a time
      const single = runPostProcessors(f, [...defaultPostProcessors]);
      expect(Array.from(fused.alloc)).toEqual(Array.from(single.alloc));
      expect(Array.from(fused.marks)).toEqual(Array.from(single.marks));
      let ideal = 0;
      for (const x of f.ideal) ideal += x;
      if (ideal > f.capacityCpuMillis) excessFrames++;
      for (const m of fused.marks) if (m !== 0) marked++;
    }
    // the random frames reach the take-back and every kind of mark
    expect(excessFrames).toBeGreaterThan(10);
    expect(marked).toBeGreaterThan(200);
  });
});
