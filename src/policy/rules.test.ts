import { describe, expect, it } from "vitest";
import {
  anyGoalMargin,
  GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO,
  goalBase,
  IMPORTANCE_WEIGHT_RATIO,
  importanceWeightRatio,
  importanceWeightRatioFor,
  mayCapAtEntitlement,
  roundHalfUp,
  weightDivisors,
  weightForAllocation,
  withQuotaFloor,
} from "./rules.ts";
import { divisorsFor, partitionTable } from "./table.ts";
import { seeded, spec } from "./test-fixtures.ts";

/** The double next to x (x > 0) by its bits: one step down (-1) or up (1). */
function neighbour(x: number, step: number): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  v.setBigInt64(0, v.getBigInt64(0) + BigInt(x > 0 ? step : -step));
  return v.getFloat64(0);
}

describe("roundHalfUp", () => {
  it("is Math.round on every double tried: edge cases, halves, random magnitudes", () => {
    const cases = [
      0,
      -0,
      0.5,
      -0.5,
      1.5,
      2.5,
      -1.5,
      -2.5,
      0.49999999999999994,
      -0.49999999999999994,
      0.5000000000000001,
      1.4999999999999998,
      2 ** 52 - 0.5,
      2 ** 52,
      2 ** 52 + 1,
      2 ** 53 + 2,
      Number.MIN_VALUE,
      -Number.MIN_VALUE,
      Number.MAX_VALUE,
      Number.NaN,
      Infinity,
      -Infinity,
    ];
    const rnd = seeded(5);
    for (let k = 0; k < 20_000; k++) {
      const x = (rnd() - 0.1) * 10 ** Math.floor(rnd() * 20 - 4);
      const half = Math.floor(x) + 0.5;
      cases.push(x, half, neighbour(half, -1), neighbour(half, 1));
    }
    for (const x of cases) expect(Object.is(roundHalfUp(x), Math.round(x)), `x = ${x}`).toBe(true);
  });
});

describe("importance in the weights", () => {
  it("halves the weight per more important level present among the non-batch partitions", () => {
    expect(IMPORTANCE_WEIGHT_RATIO).toBe(2);
    const d = weightDivisors([
      spec("a", { importance: 1 }),
      spec("b", { importance: 3 }),
      spec("c", { importance: 5 }),
      // batch runs in the idle class: its importance does not make a level
      spec("hog", { importance: 2, kind: "batch" }),
    ]);
    // levels 1, 3, 5 present: 1 → 1, 3 → 2, 5 → 4 (2 and 4 are never used: nobody is there)
    expect([d[1], d[3], d[5]]).toEqual([1, 2, 4]);
    // one level only: nobody is divided
    const one = weightDivisors([spec("x", { importance: 3 }), spec("y", { importance: 3 })]);
    expect(one[3]).toBe(1);
  });

  it("quarters the weight per level when goals are met by cycles", () => {
    expect(GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO).toBe(4);
    expect(importanceWeightRatio({ goalCycleFraction: 0 })).toBe(2);
    expect(importanceWeightRatio({ goalCycleFraction: 0.99 })).toBe(4);
    const specs = [
      spec("a", { importance: 1 }),
      spec("b", { importance: 3 }),
      spec("c", { importance: 5 }),
    ];
    const d = weightDivisors(specs, new Float64Array(6), GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO);
    expect([d[1], d[3], d[5]]).toEqual([1, 4, 16]);
    const t = partitionTable(specs);
    expect([...divisorsFor(t, 2)].slice(1)).toEqual([1, 2, 2, 4, 4]);
    expect([...divisorsFor(t, 4)].slice(1)).toEqual([1, 4, 4, 16, 16]);
  });

  it("takes the 4× ratio while any goal partition is held per cycle (an open-loop one), else 2×; anyGoalMargin finds a margin", () => {
    const k = { goalCycleFraction: 0, openLoopGoalCycleFraction: 0.99 };
    expect(importanceWeightRatioFor(k, false)).toBe(2);
    expect(importanceWeightRatioFor(k, true)).toBe(4);
    // openLoopGoalCycles 0: a margin left in the state does not count
    expect(importanceWeightRatioFor({ ...k, openLoopGoalCycleFraction: 0 }, true)).toBe(2);
    // every goal by cycles: 4× whatever is held
    expect(importanceWeightRatioFor({ ...k, goalCycleFraction: 0.99 }, false)).toBe(4);
    expect(anyGoalMargin(new Float64Array([0, Number.NaN, 0]))).toBe(false);
    expect(anyGoalMargin(new Float64Array(0))).toBe(false);
    expect(anyGoalMargin(new Float64Array([0, 0.05, 0]))).toBe(true);
  });

  it("protects an importance-1 entitlement on a CPU it shares with an importance-5 one", () => {
    // overload on the real testbed: a (importance 1) entitled to 400m of 1,700m and c
    // (importance 5) to 900m shared a CPU; proportional weights 2,353 : 5,294 gave a 31 % of
    // the weight there
    const a = weightForAllocation(400, 1700, 1);
    const c = weightForAllocation(900, 1700, 4);
    expect([a, c]).toEqual([2353, 1324]);
    // now a has 2,353 ÷ (2,353 + 1,324) = 64 % of the weight on that CPU, more than the 40 % of
    // it that its 400m is
    expect(a / (a + c)).toBeCloseTo(0.64, 2);
  });

  it("the goal controller's base undoes the divisor: the entitlement the weight stands for", () => {
    // weight 1,324 at divisor 4 of 1,700m → 1,324 × 4 ÷ 10,000 × 1,700 = 900.3m
    expect(goalBase(1324, 850, 1700, 4)).toBeCloseTo(900.32, 2);
    // no weight yet: the last entitlement
    expect(goalBase(Number.NaN, 850, 1700, 4)).toBe(850);
  });
});

describe("the kernel's quota floor in the guarantee", () => {
  const on = { suppressBatchAfterCycles: 10 };
  const off = { suppressBatchAfterCycles: 0 };
  it("raises the guarantee of a partition capped at its entitlement to the floor", () => {
    // capped, min 0, floor 10m (1000 us at a 100000 us period) -> min 10m
    expect(withQuotaFloor(spec("c", { capped: true }), 10, on).minCpuMillis).toBe(10);
    // a guarantee above the floor stays
    expect(
      withQuotaFloor(spec("c", { capped: true, minCpuMillis: 250 }), 10, on).minCpuMillis,
    ).toBe(250);
    // batch may be capped at its entitlement only while suppression is on
    expect(withQuotaFloor(spec("b", { kind: "batch" }), 20, on).minCpuMillis).toBe(20);
    expect(withQuotaFloor(spec("b", { kind: "batch" }), 20, off).minCpuMillis).toBe(0);
    // an uncapped network partition is capped at most at its max: unchanged (same object)
    const net = spec("n", { maxCpuMillis: 5 });
    expect(withQuotaFloor(net, 10, on)).toBe(net);
    expect(mayCapAtEntitlement(net, on)).toBe(false);
  });
});
