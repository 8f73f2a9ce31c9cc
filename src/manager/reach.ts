// Capacity the partitions can reach. The configured capacity (managed CPUs − reserve) assumes
// the partitions may run on every managed CPU; a cpuset or a thread affinity (`taskset`, a
// container runtime's CPU pinning) can hold all of them to fewer. Entitlements on CPUs nobody
// can reach are weight without CPU behind it: on the real testbed (goals-tiers-real, three
// servers pinned to one CPU, capacity 1.7) 0.7 CPUs of phantom spare went as weight to the
// importance-3 server beside an importance-2 server missing its goal. So every few cycles the
// manager takes the union of the CPUs the partitions can reach and hands the policy at most
// 1000m per CPU of it.
import type { PolicyKnobs } from "../policy/types.ts";
import type { PartitionWiring } from "./manager-options.ts";

/** Refresh every 20 cycles (2 s at 100 ms): affinity changes rarely, and reading it costs a file per thread. */
export const DEFAULT_REACH_REFRESH_CYCLES = 20;

/**
 * The capacity the policy may share out: the configured one, at most 1000m per CPU of the union
 * of the partitions' reachable CPUs. Unchanged when any partition's CPUs are unknown (null).
 * Pure.
 */
export function reachableCapacity(
  configuredCpuMillis: number,
  cpusPerPartition: ReadonlyArray<readonly number[] | null>,
): { capacityCpuMillis: number; cpus: number[] | null } {
  const union = new Set<number>();
  for (const cpus of cpusPerPartition) {
    if (cpus === null) return { capacityCpuMillis: configuredCpuMillis, cpus: null };
    for (const c of cpus) union.add(c);
  }
  if (union.size === 0) return { capacityCpuMillis: configuredCpuMillis, cpus: null };
  const cpus = [...union].sort((a, b) => a - b);
  return { capacityCpuMillis: Math.min(configuredCpuMillis, cpus.length * 1000), cpus };
}

/** What the manager reports when the capacity in force changes. */
export interface CapacityChange {
  configuredCpuMillis: number;
  fromCpuMillis: number;
  toCpuMillis: number;
  /** The union of the CPUs the partitions can reach (null: unknown, so the configured capacity). */
  cpus: number[] | null;
}

/** The knobs in force: the configured ones with the reachable capacity, refreshed every few cycles. */
export class ReachableKnobs {
  private knobs: PolicyKnobs;
  private cycles = 0;

  constructor(
    private readonly configured: PolicyKnobs,
    private readonly refreshCycles: number,
    private readonly onChange?: (c: CapacityChange) => void,
  ) {
    this.knobs = configured;
  }

  /**
   * The knobs for this cycle, over the wirings of the partitions that exist (asked for only
   * on the cycles that read, so the other cycles allocate nothing).
   */
  current(wirings: () => readonly PartitionWiring[]): PolicyKnobs {
    if (this.cycles++ % this.refreshCycles !== 0) return this.knobs;
    const readers = wirings().map((w) => w.reachableCpus);
    if (readers.length === 0 || readers.some((r) => r === undefined)) return this.knobs;
    const cpus = readers.map((r) => {
      try {
        return r!();
      } catch {
        return null;
      }
    });
    const configured = this.configured.capacityCpuMillis;
    const next = reachableCapacity(configured, cpus);
    const from = this.knobs.capacityCpuMillis;
    if (next.capacityCpuMillis !== from) {
      this.knobs =
        next.capacityCpuMillis === configured
          ? this.configured
          : { ...this.configured, capacityCpuMillis: next.capacityCpuMillis };
      this.onChange?.({
        configuredCpuMillis: configured,
        fromCpuMillis: from,
        toCpuMillis: next.capacityCpuMillis,
        cpus: next.cpus,
      });
    }
    return this.knobs;
  }
}
