// Helpers shared by the baselines.
import type { Decision, Directive, PartitionId } from "../../core/model.ts";
import { type CpuMillis, clamp, MILLIS_PER_CPU } from "../../core/units.ts";

/**
 * cgroup v2 weight in proportion to an allocation, as Kubernetes derives cpu.shares from
 * requests (1,000 millicores -> 1024 shares -> weight 100).
 */
export const weightForCpuMillis = (cpuMillis: CpuMillis): number =>
  clamp(Math.round(cpuMillis / 10), 1, 10_000);

export function directive(
  partition: PartitionId,
  cpuMillis: CpuMillis,
  weight?: number,
): Directive {
  return {
    partition,
    cpuMillis,
    weight: weight ?? weightForCpuMillis(cpuMillis),
    cpuCount: Math.max(1, Math.ceil(cpuMillis / MILLIS_PER_CPU)),
  };
}

export function decision(
  partition: PartitionId,
  previousCpuMillis: CpuMillis,
  cpuMillis: CpuMillis,
  demandCpuMillis: CpuMillis,
  why: string,
): Decision {
  return {
    partition,
    previousCpuMillis,
    cpuMillis,
    demandCpuMillis,
    velocityPacketsPerCpuSec: null,
    performanceIndex: null,
    why,
  };
}

export const fmtMillis = (m: number): string => `${Math.round(m)}m`;
