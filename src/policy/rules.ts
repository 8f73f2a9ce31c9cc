// Small per-partition rules shared by the step and by the explanation that re-derives a
// decision's reasons later, so both always agree. Pure.
import type { PartitionSpec } from "../core/model.ts";
import type { PolicyKnobs } from "./types.ts";

/** Where a partition's demand came from this cycle. */
export type DemandSource = "network" | "batch" | "held" | "unseen";
export const SOURCES: readonly DemandSource[] = ["network", "batch", "held", "unseen"];
/** Codes of SOURCES (index into it). */
export const Source = { network: 0, batch: 1, held: 2, unseen: 3 } as const;

/** Guarantee in whole millicores (rounded up, never negative). */
export const minOf = (spec: PartitionSpec): number => Math.max(0, Math.ceil(spec.minCpuMillis));

/**
 * Whether the step may cap a partition at its entitlement: `capped`, or batch while batch
 * suppression is on (suppressBatchAfterCycles > 0). Other caps are a configured max: a limit,
 * not a share of the capacity.
 */
export const mayCapAtEntitlement = (
  spec: PartitionSpec,
  knobs: Pick<PolicyKnobs, "suppressBatchAfterCycles">,
): boolean => spec.capped === true || (spec.kind === "batch" && knobs.suppressBatchAfterCycles > 0);

/**
 * The spec the step should see for a partition whose cgroup's quota floor is
 * `quotaFloorCpuMillis`: one it may cap at its entitlement gets at least the floor as its
 * guarantee. The kernel writes a smaller cap as the floor (a 0m entitlement as 1,000 us per
 * 100 ms = 10m), so without this the caps in force could sum above the capacity; with it the
 * entitlements, which sum to at most the capacity, are what the kernel enforces (as long as
 * the guarantees and floors together fit: else the least important tier is scaled).
 */
export function withQuotaFloor(
  spec: PartitionSpec,
  quotaFloorCpuMillis: number,
  knobs: Pick<PolicyKnobs, "suppressBatchAfterCycles">,
): PartitionSpec {
  if (!(quotaFloorCpuMillis > spec.minCpuMillis) || !mayCapAtEntitlement(spec, knobs)) return spec;
  return { ...spec, minCpuMillis: quotaFloorCpuMillis };
}

/** Limit in whole millicores (rounded down, never below the guarantee). */
export const maxOf = (spec: PartitionSpec): number =>
  Math.max(minOf(spec), Math.floor(spec.maxCpuMillis));

/** The partition has a goal (a positive packets/s rate); its goal controller sets its entitlement. */
export const hasGoal = (spec: PartitionSpec): boolean =>
  spec.goalPacketsPerSec !== undefined && spec.goalPacketsPerSec > 0;

/** Importance 1..5 (anything else is clamped; NaN counts as 5, the least). */
export const importanceOf = (spec: PartitionSpec): number =>
  Math.min(5, Math.max(1, Math.round(spec.importance) || 5));

export const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** 2^52: from here on every double is an integer (and x + 0.5 may round to the next one). */
const ALL_INTEGERS_FROM = 4_503_599_627_370_496;
/** The largest double below 0.5: the one positive x under 2^52 where x + 0.5 rounds up to 1. */
const JUST_BELOW_HALF = 0.49999999999999994;

/**
 * Math.round(x), the same value for every double, without its data-dependent jump. V8 compiles
 * Math.round to a round-up and a compare-and-branch on the fraction, which random rows
 * mispredict half the time; Math.floor is one instruction. For 0 < x < 2^52, x ≠ the double
 * just below 0.5, floor(x + 0.5) is exact (x + 0.5 is a multiple of x's spacing and cannot round
 * across an integer); everything else (0, −0, negatives, NaN, ±Infinity, 2^52 and above) takes
 * Math.round itself. The conditions do not depend on the fraction, so they are predicted.
 */
export const roundHalfUp = (x: number): number =>
  x > 0 && x < ALL_INTEGERS_FROM && x !== JUST_BELOW_HALF ? Math.floor(x + 0.5) : Math.round(x);

/** What the tier phase aims at: demand inside [min, max], in whole millicores. */
export const demandTarget = (demandCpuMillis: number, min: number, max: number): number =>
  roundHalfUp(clamp(demandCpuMillis, min, max));

/**
 * What a partition needed last cycle: the part of its allocation the shrink limit protects.
 * A batch partition needs only its guarantee (the rest is left-over); so does a partition
 * with no demand measured yet. NaN when it had no allocation last cycle.
 */
export function protectedNeed(
  source: number,
  prevCpuMillis: number,
  prevDemandCpuMillis: number,
  min: number,
  max: number,
): number {
  if (Number.isNaN(prevCpuMillis) || source === Source.unseen) return Number.NaN;
  if (source === Source.batch || Number.isNaN(prevDemandCpuMillis)) return min;
  return clamp(prevDemandCpuMillis, min, max);
}

/**
 * The smallest step a probe takes: one past the dead-band, so the change it asks for is made
 * (0 without a dead-band). 20m band → 21m.
 */
export const minProbeStep = (deadbandCpuMillis: number): number =>
  deadbandCpuMillis > 0 ? deadbandCpuMillis + 1 : 0;

/**
 * What a partition claims while it yields to a more important goal receiver (weir.ts
 * assessDemand, receivers first): its demand, at most its use + headroom — no congestion probe or traffic
 * claim against the receiver.
 */
export const yieldingDemand = (demandCpuMillis: number, useNeedCpuMillis: number): number =>
  Math.min(demandCpuMillis, useNeedCpuMillis);

/** cgroup v2 cpu.weight range: directive weights live on this scale. */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 10_000;

/**
 * Directive weight on the v2 scale: the allocation's share of capacity mapped onto 1..10000
 * (10000 = all of capacity), divided by its importance's divisor (weightDivisors), so within
 * an importance level weights are proportional to allocations, and each level outweighs the
 * levels below it. 500m of 2,000m → 2,500; with one more important level present → 1,250.
 */
export function weightForAllocation(
  cpuMillis: number,
  capacityCpuMillis: number,
  divisor = 1,
): number {
  if (!(capacityCpuMillis > 0)) return WEIGHT_MIN;
  const w = roundHalfUp((cpuMillis / capacityCpuMillis / divisor) * WEIGHT_MAX);
  return Math.min(WEIGHT_MAX, Math.max(WEIGHT_MIN, w));
}

/**
 * Under contention a partition's weight must protect its entitlement from less important
 * partitions also on one CPU (a one-thread server competes only with what runs on its CPU, not
 * with a fluid pool): each importance level present among the non-batch partitions weighs this
 * many times the one below it, per millicore of entitlement. Real testbed, conservation-real's
 * overload (importance 1, 3 and 5 servers, 2.4 cores offered to 1.7): with weights proportional
 * to entitlement a per-cycle trace had the importance-1 server entitled to about 400m beside an
 * importance-5 one entitled to about 900m, so on a CPU they share its weight was 400 ÷ 1,300
 * = 31 % of the total; it met its goal in 60 % of seconds. Halved per level that is 4 × 400 ÷
 * (4 × 400 + 900) = 64 %, and it met its goal in 100 % of seconds (two runs of 5 repetitions).
 * A ratio of 8 also met it, but in goals-real (2 repetitions) it held the goal partition at
 * 1.10–1.19× its goal and left the other 0.19–0.43× of the surplus.
 */
export const IMPORTANCE_WEIGHT_RATIO = 2;

/**
 * The ratio between importance levels when goals are met by cycles (PolicyKnobs.goalCycleFraction
 * > 0): 4, not 2. A user who asks for a goal in 99 % of 100 ms windows asks that a stall of a
 * few tens of milliseconds behind a less important server on its CPU not happen, and what
 * decides that is the goal partition's weight beside theirs, not its entitlement's size. Real testbed,
 * conservation-real's overload (a at importance 1 offered 1.2× its goal; b at 3, c at 5, both
 * over-offered; the hog), `goalCycles: 0.99`, four interleaved rounds of one repetition each
 * (12 s measured, bench/overload-trace.ts, 2026-12-03 12:53–12:57 UTC, load 7.6 → 6.9): with a
 * ratio of 2 a met its goal in 96, 97, 97, 97 % of cycles, p99 71, 111, 56, 44 ms; with 4 in
 * 100, 100, 100, 98 %, p99 16, 13, 16, 28 ms; b (importance 3) served 4,959–6,219 packets/s
 * against 6,146–7,099 (c was not traced). Windows a missed at 2 were single stalls (its served
 * count under the goal, the next window over its offer) at entitlements 1.2–3× what its goal
 * needs: more entitlement did not prevent them. The price is the others' share where the goal
 * partition would take more: in goals-real (A a saturated closed-loop server beside B on one
 * CPU) B got 0.23× of the surplus against 0.35× with 2× (docs/control-law.md).
 */
export const GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO = 4;

/** The ratio between importance levels under these knobs (goals by cycles: the larger one). */
export const importanceWeightRatio = (knobs: { goalCycleFraction: number }): number =>
  knobs.goalCycleFraction > 0 ? GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO : IMPORTANCE_WEIGHT_RATIO;

/**
 * The ratio a step writes its weights with: the larger one with every goal by cycles, and also
 * while any goal partition is held per cycle on its own (`heldPerCycle`: an open-loop one,
 * demand.ts OPEN_LOOP_GOAL_CYCLE_SHARE, with a margin after the step's window) — the same
 * promise, for the same reason (GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO). Real testbed,
 * conservation-real's overload (a open loop at importance 1; 2026-12-05 05:49–06:25 UTC, 5
 * repetitions): held per cycle with 2× per level, a met its goal in 99.2 % [95–100] of cycles
 * but its p99 was 40.0 ms against static weights' 9.0 ms (docs/control-law.md, *Open-loop
 * goals are met per cycle*). A step converts last step's weights back to millicores (goalBase)
 * with last step's ratio: this of the margins in its state (anyGoalMargin).
 */
export const importanceWeightRatioFor = (
  knobs: { goalCycleFraction: number; openLoopGoalCycleFraction: number },
  heldPerCycle: boolean,
): number =>
  knobs.goalCycleFraction > 0 || (knobs.openLoopGoalCycleFraction > 0 && heldPerCycle)
    ? GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO
    : IMPORTANCE_WEIGHT_RATIO;

/** Whether any row holds a goal margin (> 0; NaN and 0 are none). */
export function anyGoalMargin(goalMargin: Float64Array): boolean {
  for (let i = 0; i < goalMargin.length; i++) if (goalMargin[i]! > 0) return true;
  return false;
}

/**
 * Weight divisors by importance (index 1..5; index 0 unused): `ratio` (IMPORTANCE_WEIGHT_RATIO
 * unless goals are met by cycles) to the power of the number of more important levels present
 * among the non-batch specs. Levels 1, 3 and 5 present → 1, 2, 2, 4, 4 (an absent level's
 * divisor is never used: it has no partitions).
 */
export function weightDivisors(
  specs: readonly PartitionSpec[],
  out: Float64Array = new Float64Array(6),
  ratio: number = IMPORTANCE_WEIGHT_RATIO,
): Float64Array {
  let present = 0;
  for (const spec of specs) if (spec.kind !== "batch") present |= 1 << importanceOf(spec);
  let rank = 0;
  out[0] = 1;
  for (let imp = 1; imp <= 5; imp++) {
    out[imp] = ratio ** rank;
    if (present & (1 << imp)) rank++;
  }
  return out;
}

/**
 * A goal partition's weight dead-band, both ways: a third of the others' (5 % at the default
 * 0.15), so its controller's steps reach the kernel (express.ts weightBands); a receiver's step
 * is never smaller than it (demand.ts GOAL_MIN_STEP_MARGIN_CPU_MILLIS).
 */
export const goalWeightBandFraction = (
  knobs: Pick<PolicyKnobs, "weightDeadbandFraction">,
): number => (knobs.weightDeadbandFraction > 0 ? knobs.weightDeadbandFraction / 3 : 0);

/**
 * What a goal partition's controller scales by its PI: the entitlement its last written weight
 * stands for (weight × its importance's divisor ÷ 10000 × capacity), else its last entitlement
 * (null: none).
 */
export function goalBase(
  prevWeight: number,
  prevCpuMillis: number | null,
  capacityCpuMillis: number,
  divisor = 1,
): number | null {
  if (!Number.isNaN(prevWeight) && capacityCpuMillis > 0)
    return ((prevWeight * divisor) / WEIGHT_MAX) * capacityCpuMillis;
  return prevCpuMillis;
}
