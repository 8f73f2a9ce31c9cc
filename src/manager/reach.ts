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

/**
 * What the manager reports after the first complete sweep (whatever it found: the configured
 * capacity may stand because the partitions reach every CPU, or because some could not be
 * read), then whenever the capacity in force or the partitions whose CPUs are unknown change.
 */
export interface CapacityChange {
  configuredCpuMillis: number;
  fromCpuMillis: number;
  toCpuMillis: number;
  /** The union of the CPUs the partitions can reach (null: unknown, so the configured capacity). */
  cpus: number[] | null;
  /** Partitions whose reachable CPUs could not be read (their reader said null or threw). */
  unknown: string[];
}

/**
 * The knobs in force: the configured ones with the reachable capacity. The first cycle reads
 * every partition's CPUs; after that a sweep starts every `refreshCycles` cycles and reads
 * ceil(partitions ÷ refreshCycles) of them a cycle, so no one cycle pays for all of them (at
 * 10,000 partitions a whole read took about 1 s of one 40 ms cycle in 20). The capacity is
 * re-evaluated when a sweep has read them all.
 */
export class ReachableKnobs {
  private knobs: PolicyKnobs;
  private cycles = 0;
  /** The sweep under way: its readers, what they read so far, and the next to read. */
  private sweep: {
    ids: string[];
    readers: Array<(() => number[] | null) | undefined>;
    cpus: Array<number[] | null>;
    next: number;
  } | null = null;
  /** The partitions unknown at the last complete sweep (null before the first). */
  private unknown: string[] | null = null;

  constructor(
    private readonly configured: PolicyKnobs,
    private readonly refreshCycles: number,
    private readonly onChange?: (c: CapacityChange) => void,
  ) {
    this.knobs = configured;
  }

  /**
   * The knobs for this cycle, over the wirings of the partitions that exist (asked for only
   * on the cycle a sweep starts, so the cycles between sweeps allocate nothing). `wirings` is
   * called with `arg`, so a caller can pass a function that lives (no closure made a cycle).
   */
  current<A>(wirings: (arg: A) => readonly PartitionWiring[], arg?: A): PolicyKnobs {
    const cycle = this.cycles++;
    if (cycle % this.refreshCycles === 0) {
      const ws = wirings(arg as A);
      const readers = ws.map((w) => w.reachableCpus);
      // a partition without a reader (the simulator's, a test's): nothing on this host to read,
      // so the configured capacity stands and nothing is reported
      if (readers.length === 0 || readers.some((r) => r === undefined)) {
        this.sweep = null;
        return this.knobs;
      }
      this.sweep = { ids: ws.map((w) => w.spec.id), readers, cpus: [], next: 0 };
    }
    const sweep = this.sweep;
    if (!sweep) return this.knobs;
    const n = sweep.readers.length;
    const end = cycle === 0 ? n : Math.min(n, sweep.next + Math.ceil(n / this.refreshCycles));
    for (; sweep.next < end; sweep.next++) {
      try {
        sweep.cpus.push(sweep.readers[sweep.next]!());
      } catch {
        sweep.cpus.push(null);
      }
    }
    if (sweep.next < n) return this.knobs;
    this.sweep = null;
    const configured = this.configured.capacityCpuMillis;
    const next = reachableCapacity(configured, sweep.cpus);
    const from = this.knobs.capacityCpuMillis;
    // a reader that cannot tell (null, or it threw) is named, not silently read as "every CPU"
    const unknown = sweep.ids.filter((_, i) => sweep.cpus[i] === null);
    const unknownChanged = this.unknown === null || unknown.join("\n") !== this.unknown.join("\n");
    this.unknown = unknown;
    if (next.capacityCpuMillis !== from || unknownChanged) {
      this.knobs =
        next.capacityCpuMillis === configured
          ? this.configured
          : { ...this.configured, capacityCpuMillis: next.capacityCpuMillis };
      this.onChange?.({
        configuredCpuMillis: configured,
        fromCpuMillis: from,
        toCpuMillis: next.capacityCpuMillis,
        cpus: next.cpus,
        unknown,
      });
    }
    return this.knobs;
  }
}
