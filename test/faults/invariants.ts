// The invariants every fault file checks on weir's own cycle records: entitlements sum to at
// most the capacity even counting the kernel's quota floor (a cap below 1,000 µs per period is
// written as that floor: 10m at the usual 100 ms period), and no live partition goes below
// its guarantee.
import type { CycleRecord } from "../../src/core/model.ts";

/** The kernel's smallest CFS quota (1,000 µs) at a 100 ms period, in millicores. */
export const QUOTA_FLOOR_CPU_MILLIS = 10;

export interface InvariantCount {
  cycles: number;
  /** Largest sum of entitlements seen, a capped partition counted at least at the floor. */
  maxSumCpuMillis: number;
  violations: string[];
}

/**
 * Checks each record: Σ max(cpuMillis, floor when capped) ≤ capacity over the partitions that
 * are not gone, and cpuMillis ≥ min for each of them. `mins` by partition id.
 */
export function checkAllocations(
  records: readonly CycleRecord[],
  mins: Readonly<Record<string, number>>,
): InvariantCount {
  const out: InvariantCount = { cycles: 0, maxSumCpuMillis: 0, violations: [] };
  for (const r of records) {
    out.cycles++;
    let sum = 0;
    for (const p of r.partitions) {
      const d = p.directive;
      if (p.status === "gone" || !d) continue;
      const capped = d.capCpuMillis !== null && Number.isFinite(d.capCpuMillis);
      sum += capped ? Math.max(d.cpuMillis, QUOTA_FLOOR_CPU_MILLIS) : d.cpuMillis;
      const min = mins[p.id] ?? 0;
      if (d.cpuMillis < min)
        out.violations.push(`cycle ${r.cycle}: ${p.id} at ${d.cpuMillis}m below its ${min}m`);
    }
    out.maxSumCpuMillis = Math.max(out.maxSumCpuMillis, sum);
    if (sum > r.capacityCpuMillis)
      out.violations.push(`cycle ${r.cycle}: ${sum}m allocated above ${r.capacityCpuMillis}m`);
  }
  return out;
}
