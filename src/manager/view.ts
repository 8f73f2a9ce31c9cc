// What the manager exposes to readers (HTTP API, dashboard, `weir status`, demo view).
// The API reads only through this interface, so it runs on a real manager, the simulator
// or a test double built from recorded CycleRecords.
import type { CycleRecord, PartitionId, PartitionSpec } from "../core/model.ts";

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

export interface ManagerView {
  /** Per partition, the mechanisms its cgroup offers (optional: test doubles may omit it). */
  mechanisms?(): Record<PartitionId, PartitionMechanisms | null>;
  /** Partition specs as in force now (after runtime changes). */
  specs(): PartitionSpec[];
  /** Most recent cycle records, oldest first (bounded ring, e.g. 600). */
  recentRecords(): CycleRecord[];
  /** Called after every cycle; returns an unsubscribe function. */
  subscribe(listener: (record: CycleRecord) => void): () => void;
  /** The effective config with secrets (keys, tokens) replaced by "<redacted>". */
  redactedConfig(): unknown;
  paused(): boolean;
  /** Pause: keep sampling and recording, stop applying directives. */
  setPaused(paused: boolean): void;
  /** Change a partition's bounds at runtime; throws WeirError(CONFIG_INVALID) on bad values. */
  updateBounds(id: PartitionId, change: PartitionBoundsChange): PartitionSpec;
  /** True once the first cycle completed. */
  ready(): boolean;
}
