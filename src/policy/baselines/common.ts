// Helpers shared by the baselines.
import { cappedDirective as coreCappedDirective } from "../../core/directive.ts";
import type { CapReason, Decision, Directive, PartitionId } from "../../core/model.ts";
import { type CpuMillis, clamp, MILLIS_PER_CPU } from "../../core/units.ts";

/**
 * cgroup v2 weight in proportion to an allocation, as Kubernetes derives cpu.shares from
 * requests (1,000 millicores -> 1024 shares -> weight 100).
 */
export const weightForCpuMillis = (cpuMillis: CpuMillis): number =>
  clamp(Math.round(cpuMillis / 10), 1, 10_000);

/** How a directive expresses its entitlement; every field has the no-manager default. */
export interface DirectiveShape {
  /** Default: in proportion to the entitlement (`weightForCpuMillis`). */
  weight?: number;
  /** Default: false (normal class). */
  idle?: boolean;
  /** Hard cap; default Infinity (none). A finite cap needs a `capReason`. */
  capCpuMillis?: CpuMillis;
  /** Default 0; only meaningful under a cap, and never above it (the kernel rejects that). */
  burstCpuMillis?: CpuMillis;
  capReason?: CapReason | null;
}

/** A full directive: entitlement `cpuMillis`, expressed as `shape` says. */
export function directive(
  partition: PartitionId,
  cpuMillis: CpuMillis,
  shape: DirectiveShape = {},
): Directive {
  const capCpuMillis = shape.capCpuMillis ?? Number.POSITIVE_INFINITY;
  const capped = Number.isFinite(capCpuMillis);
  const capReason = capped ? (shape.capReason ?? null) : null;
  if (capped && capReason === null)
    throw new Error(
      `directive for ${partition}: capCpuMillis ${capCpuMillis} needs a capReason ("max", "capped" or "suppress-batch")`,
    );
  const burstCpuMillis = capped ? (shape.burstCpuMillis ?? 0) : 0;
  if (burstCpuMillis > capCpuMillis)
    throw new Error(
      `directive for ${partition}: burstCpuMillis ${burstCpuMillis} must not exceed capCpuMillis ${capCpuMillis}`,
    );
  return {
    partition,
    cpuMillis,
    weight: shape.weight ?? weightForCpuMillis(cpuMillis),
    idle: shape.idle ?? false,
    capCpuMillis,
    burstCpuMillis,
    capReason,
    cpuCount: Math.max(1, Math.ceil(cpuMillis / MILLIS_PER_CPU)),
  };
}

/**
 * A hard-capped directive: the entitlement is also the cap (a container CPU limit, a fixed
 * cfs_quota_us), reason "capped", no burst.
 */
export const cappedDirective = (
  partition: PartitionId,
  cpuMillis: CpuMillis,
  weight?: number,
): Directive => coreCappedDirective(partition, cpuMillis, weight ?? weightForCpuMillis(cpuMillis));

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
