// The core allocation: guarantees, held partitions, importance tiers, left-over.
import { describe, expect, it } from "vitest";
import { type AllocationProblem, allocate, createAllocationScratch, Mode } from "./allocate.ts";

interface Row {
  min?: number;
  max?: number;
  weight?: number;
  importance?: number;
  mode?: number;
  target?: number;
  eligible?: boolean;
}

function problem(capacity: number, rows: Row[], share = false): AllocationProblem {
  const f = (pick: (r: Row) => number): Float64Array => Float64Array.from(rows.map(pick));
  return {
    capacityCpuMillis: capacity,
    lo: f((r) => r.min ?? 0),
    hi: f((r) => r.max ?? 4000),
    weight: f((r) => r.weight ?? 1),
    importance: Uint8Array.from(rows.map((r) => r.importance ?? 3)),
    mode: Uint8Array.from(rows.map((r) => r.mode ?? Mode.demand)),
    target: f((r) => r.target ?? r.min ?? 0),
    leftoverEligible: Uint8Array.from(rows.map((r) => (r.eligible === false ? 0 : 1))),
    shareLeftover: share,
  };
}

const rounded = (xs: Float64Array): number[] => Array.from(xs, (x) => Math.round(x * 1000) / 1000);

describe("allocate", () => {
  it("gives every min first, then meets demand tier by tier in importance order", () => {
    // capacity 1,000; mins 100 + 200 + 300 = 600 leave 400.
    // tier 1 (A) wants 500: +400 → A 500; nothing left for B's 600 at tier 2.
    const r = allocate(
      problem(1000, [
        { min: 100, importance: 1, target: 500 },
        { min: 200, importance: 2, target: 600 },
        { min: 300, importance: 3, target: 300 },
      ]),
    );
    expect(rounded(r.alloc)).toEqual([500, 200, 300]);
    expect(r.guaranteesCut).toBe(false);
    expect(r.idleCpuMillis).toBe(0);
  });

  it("water-fills one tier by weight", () => {
    // all importance 1, want 600 each, weights 1:2:2, capacity 1,000:
    // min(600, λ) + 2 × min(600, 2λ) = 1000 → 5λ = 1000 → λ = 200: 200, 400, 400
    const r = allocate(
      problem(1000, [
        { importance: 1, target: 600, weight: 1 },
        { importance: 1, target: 600, weight: 2 },
        { importance: 1, target: 600, weight: 2 },
      ]),
    );
    expect(rounded(r.alloc)).toEqual([200, 400, 400]);
  });

  it("honours mins in importance order when they exceed capacity, scaling the tier that does not fit", () => {
    // capacity 500; tier 1 min 200 fits (300 left); tier 2 min 400 does not: × 300/400 = 300;
    // tier 3 gets nothing. The sum is exactly capacity.
    const r = allocate(
      problem(500, [
        { min: 200, importance: 1, target: 900 },
        { min: 400, importance: 2, target: 900 },
        { min: 100, importance: 3, target: 900 },
      ]),
    );
    expect(r.guaranteesCut).toBe(true);
    expect(rounded(r.effectiveMin)).toEqual([200, 300, 0]);
    expect(rounded(r.alloc)).toEqual([200, 300, 0]);
  });

  it("gives a held partition its previous value before any tier", () => {
    // capacity 1,000: held H (importance 5) keeps 600; tier 1's N gets the 400 left of its 800
    const r = allocate(
      problem(1000, [
        { mode: Mode.held, importance: 5, target: 600, eligible: false },
        { importance: 1, target: 800 },
      ]),
    );
    expect(rounded(r.alloc)).toEqual([600, 400]);
  });

  it("shares the left-over by weight up to max, or keeps it idle", () => {
    // capacity 2,000. Demand: A 300, C 200 (max 250); batch B takes only left-over (max 500).
    const rows: Row[] = [
      { importance: 1, target: 300, max: 2000, weight: 1 },
      { mode: Mode.batch, importance: 5, max: 500, weight: 1 },
      { importance: 2, target: 200, max: 250, weight: 2 },
    ];
    // left-over 2,000 − 500 = 1,500 by weight 1:1:2 above current values:
    // C fills its 50 of room at λ = 25; B its 500 at λ = 500; A takes the rest: 1,500 − 550 = 950
    const share = allocate(problem(2000, rows, true));
    expect(rounded(share.alloc)).toEqual([1250, 500, 250]);
    expect(rounded(share.leftover)).toEqual([950, 500, 50]);
    expect(share.idleCpuMillis).toBeCloseTo(0, 9);

    const idle = allocate(problem(2000, rows, false));
    expect(rounded(idle.alloc)).toEqual([300, 0, 200]);
    expect(idle.idleCpuMillis).toBe(1500);
  });

  it("never gives a partition more than its max, even with capacity to spare", () => {
    const r = allocate(
      problem(
        10_000,
        [
          { target: 700, max: 700 },
          { target: 300, max: 400 },
        ],
        true,
      ),
    );
    expect(rounded(r.alloc)).toEqual([700, 400]);
    expect(r.idleCpuMillis).toBe(10_000 - 1100);
  });

  it("keeps its importance buckets for the same columns: a held partition changes tier as its mode changes", () => {
    // capacity 600, mins 0; tier 0 (held) first, then importance 1, then 2
    const p = problem(600, [
      { importance: 2, target: 400 },
      { importance: 1, target: 300 },
      { importance: 2, target: 300 },
    ]);
    const scratch = createAllocationScratch(3);
    // nobody held: importance 1 takes 300, importance 2 shares 300 by weight (150 each)
    expect(rounded(allocate(p, undefined, scratch).alloc)).toEqual([150, 300, 150]);
    // row 0 held (its previous value as target): first, before importance 1
    p.mode[0] = Mode.held;
    expect(rounded(allocate(p, undefined, scratch).alloc)).toEqual([400, 200, 0]);
    p.mode[0] = Mode.demand;
    expect(rounded(allocate(p, undefined, scratch).alloc)).toEqual([150, 300, 150]);
    // new columns (another spec list) with the same scratch: bucketed again
    const q = problem(600, [
      { importance: 1, target: 400 },
      { importance: 2, target: 300 },
    ]);
    expect(rounded(allocate(q, undefined, scratch).alloc)).toEqual([400, 200]);
  });
});
