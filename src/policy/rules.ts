// Small per-partition rules shared by the step and by the explanation that re-derives a
// decision's reasons later, so both always agree. Pure.
import type { PartitionSpec } from "../core/model.ts";

/** Where a partition's demand came from this cycle. */
export type DemandSource = "network" | "batch" | "held" | "unseen";
export const SOURCES: readonly DemandSource[] = ["network", "batch", "held", "unseen"];
/** Codes of SOURCES (index into it). */
export const Source = { network: 0, batch: 1, held: 2, unseen: 3 } as const;

/** Guarantee in whole millicores (rounded up, never negative). */
export const minOf = (spec: PartitionSpec): number => Math.max(0, Math.ceil(spec.minCpuMillis));

/** Limit in whole millicores (rounded down, never below the guarantee). */
export const maxOf = (spec: PartitionSpec): number =>
  Math.max(minOf(spec), Math.floor(spec.maxCpuMillis));

/** Importance 1..5 (anything else is clamped; NaN counts as 5, the least). */
export const importanceOf = (spec: PartitionSpec): number =>
  Math.min(5, Math.max(1, Math.round(spec.importance) || 5));

export const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** What the tier phase aims at: demand inside [min, max], in whole millicores. */
export const demandTarget = (demandCpuMillis: number, min: number, max: number): number =>
  Math.round(clamp(demandCpuMillis, min, max));

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

/** cgroup v2 cpu.weight range: directive weights live on this scale. */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 10_000;

/**
 * What a goal partition's controller scales by its PI: the entitlement its last written weight
 * stands for (weight ÷ 10000 × capacity), else its last entitlement (null: none).
 */
export function goalBase(
  prevWeight: number,
  prevCpuMillis: number | null,
  capacityCpuMillis: number,
): number | null {
  if (!Number.isNaN(prevWeight) && capacityCpuMillis > 0)
    return (prevWeight / WEIGHT_MAX) * capacityCpuMillis;
  return prevCpuMillis;
}
