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
 * Every field of a Directive (`satisfies` fails to compile when one is added and not listed
 * here), for sameDirective.
 */
const DIRECTIVE_FIELDS = Object.keys({
  partition: 0,
  cpuMillis: 0,
  weight: 0,
  idle: 0,
  capCpuMillis: 0,
  burstCpuMillis: 0,
  capReason: 0,
  capPeriodUs: 0,
  cpuCount: 0,
} satisfies Record<keyof Directive, 0>) as ReadonlyArray<keyof Directive>;

/** Two directives with every field equal (an absent `capPeriodUs` equals only an absent one). */
export function sameDirective(a: Directive, b: Directive): boolean {
  for (const k of DIRECTIVE_FIELDS) if (a[k] !== b[k]) return false;
  return true;
}
