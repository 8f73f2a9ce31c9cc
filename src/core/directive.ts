// Directive constructors shared by backends, agents and tests. Pure.
import type { Directive, PartitionId } from "./model.ts";
import type { CpuMillis } from "./units.ts";

/**
 * A directive that caps the partition at `capCpuMillis` (its entitlement too; Infinity = no
 * cap, entitlement 0) with `weight`: what an agent writes from a directive datagram, and the
 * shape of the cap-only directives older tests and baselines use.
 */
export function cappedDirective(
  partition: PartitionId,
  capCpuMillis: CpuMillis,
  weight: number,
  cpuCount: number = Number.isFinite(capCpuMillis)
    ? Math.max(1, Math.ceil(capCpuMillis / 1000))
    : 0,
): Directive {
  const capped = Number.isFinite(capCpuMillis);
  return {
    partition,
    cpuMillis: capped ? capCpuMillis : 0,
    weight,
    idle: false,
    capCpuMillis,
    burstCpuMillis: 0,
    capReason: capped ? "capped" : null,
    cpuCount,
  };
}
