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

/**
 * Two directives with every field equal (an absent `capPeriodUs` equals only an absent one).
 * Plain comparisons: it runs for every partition every cycle (the actuator's no-change path and
 * the cycle record); directive.test.ts fails when a field of Directive is not compared here.
 */
export function sameDirective(a: Directive, b: Directive): boolean {
  return (
    a.partition === b.partition &&
    a.cpuMillis === b.cpuMillis &&
    a.weight === b.weight &&
    a.idle === b.idle &&
    a.capCpuMillis === b.capCpuMillis &&
    a.burstCpuMillis === b.burstCpuMillis &&
    a.capReason === b.capReason &&
    a.capPeriodUs === b.capPeriodUs &&
    a.cpuCount === b.cpuCount
  );
}
