// Contract of an actuator (the "hypervisor" side): writes a partition's CPU allocation.
// One file per backend; one contract suite (contract.ts) runs against every one.
import type { ApplyResult, Directive, PartitionId } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";

/** The values found before weir touched a partition, restored on orderly shutdown. */
export interface AllocationSnapshot {
  partition: PartitionId;
  /** Backend-specific file -> exact content found, e.g. {"cpu.max": "max 100000"}. */
  values: Record<string, string>;
}

export interface ActuatorTarget {
  partition: PartitionId;
  /** cgroup path relative to the cgroup root, e.g. "weir/web". */
  cgroup: string;
}

export interface PartitionActuator {
  readonly partition: PartitionId;
  /** What the partition's files hold now (taken once at start, for restore). */
  snapshot(): AllocationSnapshot;
  /** Write the directive; only values that differ from what was last written/read are written. */
  apply(directive: Directive): ApplyResult;
  /** Write back a snapshot (only values that differ). */
  restore(snapshot: AllocationSnapshot): ApplyResult;
  close(): void;
  /** Write counters since open (every backend in src/actuators has them; tests and metrics read them). */
  stats?(): ActuatorStats;
  /**
   * The least cap the kernel enforces on this cgroup: its 1,000 us quota floor at the cgroup's
   * period (10m at 100 ms). A cap below it is written as it.
   */
  quotaFloorCpuMillis?(): CpuMillis;
  /** What this partition's cgroup can express beyond a cap and a weight (found at open). */
  abilities?(): ActuatorAbilities;
}

/** Mechanisms a partition's cgroup offers; the directive is expressed with what exists. */
export interface ActuatorAbilities {
  /** The kernel's idle scheduling class (cpu.idle, Linux >= 5.15); without it batch runs at the minimum weight. */
  idleClass: boolean;
  /** CFS burst (cpu.cfs_burst_us / cpu.max.burst, Linux >= 5.14). */
  burst: boolean;
}

/** How many values an actuator wrote, failed to write, and left alone because they were unchanged. */
export interface ActuatorStats {
  writes: number;
  failedWrites: number;
  unchangedSkips: number;
}

export interface ActuatorBackend {
  readonly name: string;
  /** Partition kinds this backend can manage (declared, never found by trial). */
  readonly handles: readonly string[];
  open(target: ActuatorTarget): PartitionActuator;
}
