// What a scenario run measures (RunMeasures, per-cycle RunSeries, RunResult) and the two
// reaction figures computed from a run's series: reactionTime (allocation) and recoveryTime
// (service). runScenario (run.ts) fills them.
import type { CpuMillis } from "../core/units.ts";

export interface RunMeasures {
  offeredPackets: number;
  servedPackets: number;
  droppedPackets: number;
  /** Served ÷ offered over all network partitions. */
  servedFraction: number;
  dropFraction: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** CPU used, mean cores over the run. */
  networkCpuCores: number;
  batchCpuCores: number;
  /** Throttled CFS periods ÷ periods of the network partitions (0 when never capped). */
  networkThrottledFraction: number;
  /** Writes to cgroup files by the actuators (quota + shares). */
  allocationWrites: number;
  /** Cycles x partitions in which the applied cap changed. */
  allocationChanges: number;
  /** Load step -> 90 % of the policy's new allocation applied; null: no step, no cap, or no change. */
  reactionMs: number | null;
  /** Load step -> the stepped partition serves >= 90 % of its offered load for 5 cycles in a row; null: never. */
  recoveryMs: number | null;
  /** The manager's CPU time (user + system, process.cpuUsage around runCycle). */
  managerCpuMs: number;
  managerCpuUsPerCycle: number;
  managerCpuUsP99PerCycle: number;
  /** CPU time of policy.step alone (the pure control law), per cycle. */
  policyStepUsPerCycle: number;
  policyStepUsP99PerCycle: number;
  /** Resident set of the whole benchmark process at the end (sim + manager), MB. */
  processRssMb: number;
  cycles: number;
  wallMs: number;
}

export interface RunSeries {
  /** Virtual time of each cycle's end, ms. */
  tMs: number[];
  partitions: Record<
    string,
    {
      kind: "network" | "batch";
      /** Applied cap in millicores; null when uncapped. */
      capCpuMillis: Array<number | null>;
      servedPacketsPerSec: number[];
      offeredPacketsPerSec: number[];
      cpuMillis: number[];
    }
  >;
}

export interface RunResult {
  scenario: string;
  policy: string;
  capacityCpuMillis: CpuMillis;
  measures: RunMeasures;
  series?: RunSeries;
}

export const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

/**
 * Time from the step until the applied allocation (the cap, or the weight's share of capacity
 * for an uncapped partition) first covers 90 % of the way from the allocation before
 * the step to the cap the policy settled on (the median over the last quarter of
 * [atMs, untilMs]). Null when the partition is uncapped, or the settled cap moved by less
 * than 5 % of the old one (nothing to react with).
 */
export function reactionTime(
  caps: ReadonlyArray<{ tMs: number; cap: number | null }>,
  step: { atMs: number; untilMs: number },
): number | null {
  const before = [...caps].reverse().find((c) => c.tMs < step.atMs)?.cap;
  const settleFrom = step.untilMs - (step.untilMs - step.atMs) / 4;
  const settled = caps
    .filter((c) => c.tMs >= settleFrom && c.tMs <= step.untilMs)
    .map((c) => c.cap);
  if (
    before === undefined ||
    before === null ||
    settled.length === 0 ||
    settled.some((c) => c === null)
  )
    return null;
  const final = percentile(settled as number[], 0.5);
  if (Math.abs(final - before) < 0.05 * Math.max(before, 1)) return null;
  const target = before + 0.9 * (final - before);
  const up = final > before;
  const hit = caps.find(
    (c) => c.tMs >= step.atMs && c.cap !== null && (up ? c.cap >= target : c.cap <= target),
  );
  return hit ? hit.tMs - step.atMs : null;
}

/** Time from the step until the window in which >= 90 % is served starts a run of 5 such windows. */
export function recoveryTime(
  windows: ReadonlyArray<{ tMs: number; ok: boolean }>,
  atMs: number,
): number | null {
  const after = windows.filter((w) => w.tMs > atMs);
  for (let i = 0; i + 5 <= after.length; i++) {
    if (after.slice(i, i + 5).every((w) => w.ok)) return Math.max(0, after[i]!.tMs - atMs);
  }
  return null;
}
