// What the manager exposes to readers (HTTP API, dashboard, `weir status`, demo view).
// The API reads only through this interface, so it runs on a real manager, the simulator
// or a test double built from recorded CycleRecords.
import type { AppliedAllocation } from "../actuators/types.ts";
import type { CycleRecord, PartitionId, PartitionSpec, WeirErrorInfo } from "../core/model.ts";

export interface PartitionBoundsChange {
  minCpuMillis?: number;
  maxCpuMillis?: number;
  weight?: number;
  importance?: 1 | 2 | 3 | 4 | 5;
}

/**
 * What a partition's cgroup can express beyond a cap and a weight (found when it was opened;
 * null while it is not open): where the kernel has no idle class, batch runs at the minimum weight.
 */
export interface PartitionMechanisms {
  idleClass: boolean;
  burst: boolean;
}

/**
 * A partition's allocation, Desired -> Applied (as Kubernetes reports a pod's resize): what
 * weir last submitted, as the partition's backend expresses it (rounded to the kernel's units,
 * the idle weight for batch), and what the backend reports in force, both on the directive's
 * scales. A file backend applies before the cycle goes on, so the two agree at once unless a
 * write failed; a backend in front of an API applies later, and the two differ until it has.
 */
export interface PartitionAllocation {
  /** null before the first directive was submitted (or when the backend does not say). */
  desired: AppliedAllocation | null;
  applied: AppliedAllocation;
  /** desired is null or equals applied. */
  inForce: boolean;
  /** Start of the first cycle that found them different, while they still do; else null. */
  differsSinceMs: number | null;
}

/** One partition as the API shows its placement. */
export interface PartitionPlacement {
  /** The CPUs it is placed on (ascending); null: not placed (the CPUs its cpuset was found with). */
  cpus: number[] | null;
  /** Why it is placed there, or why it is not placed. */
  why: string;
  /** The cpuset.cpus it is placed through; null when it has none (placement not available). */
  file: string | null;
  /** The last write of it that failed, while it has not succeeded since. */
  error?: WeirErrorInfo;
}

/** Placement as configured, whether it is in force on this host, and why (config `placement.mode`). */
export interface PlacementDecision {
  mode: "off" | "spread" | "auto";
  inForce: boolean;
  /** Why it is or is not in force (for `off`: null unless placement would help here). */
  why: string | null;
}

export interface ManagerView {
  /** Placement as configured and whether it is in force (optional: test doubles may omit it). */
  placementDecision?(): PlacementDecision | null;
  /**
   * Per partition, its allocation desired and applied as of the latest cycle (null while its
   * actuator is not open or cannot say what is in force; optional: test doubles may omit it).
   */
  allocations?(): Record<PartitionId, PartitionAllocation | null>;
  /**
   * Per partition, where it is placed on CPUs and why (config `placement:`; empty when it is
   * off; optional: test doubles may omit it).
   */
  placements?(): Record<PartitionId, PartitionPlacement>;
  /** Per partition, the mechanisms its cgroup offers (optional: test doubles may omit it). */
  mechanisms?(): Record<PartitionId, PartitionMechanisms | null>;
  /** Partition specs as in force now (after runtime changes). */
  specs(): PartitionSpec[];
  /** Most recent cycle records, oldest first (bounded ring, e.g. 600). */
  recentRecords(): CycleRecord[];
  /** Called after every cycle; returns an unsubscribe function. */
  subscribe(listener: (record: CycleRecord) => void): () => void;
  /**
   * The effective config with secrets (keys, tokens) replaced by "<redacted>": the bounds as in
   * force after runtime changes (updateBounds), not as the config file gave them.
   */
  redactedConfig(): unknown;
  paused(): boolean;
  /** Pause: keep sampling and recording, stop applying directives. */
  setPaused(paused: boolean): void;
  /** Change a partition's bounds at runtime; throws WeirError(CONFIG_INVALID) on bad values. */
  updateBounds(id: PartitionId, change: PartitionBoundsChange): PartitionSpec;
  /** True once the first cycle completed. */
  ready(): boolean;
}
