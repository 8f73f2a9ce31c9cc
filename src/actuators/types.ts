// Contract of an actuator (the "hypervisor" side): writes a partition's CPU allocation.
// One file per backend; one contract suite (contract.ts) runs against every one.
import type { ApplyResult, Directive, PartitionId, WeirErrorInfo } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";

/** The values found before weir touched a partition, restored on orderly shutdown. */
export interface AllocationSnapshot {
  partition: PartitionId;
  /** Backend-specific file -> exact content found, e.g. {"cpu.max": "max 100000"}. */
  values: Record<string, string>;
}

/**
 * Where each kind of backend finds a partition's allocation, keyed by kind (the `handles` a
 * backend declares). A backend of a new kind adds its key from its own file by declaration
 * merging, e.g. `declare module "./types.ts" { interface TargetLocations { qemu: string } }`.
 */
export interface TargetLocations {
  /** cgroup path relative to the cgroup root, e.g. "weir/web" (cgroup v1/v2, recording, dry-run, the simulator). */
  cgroup: string;
}

export type TargetKind = keyof TargetLocations;

/** One partition's target: its id and exactly one location, keyed by the kind of backend. */
export type ActuatorTarget = {
  [K in TargetKind]: { partition: PartitionId } & Pick<TargetLocations, K>;
}[TargetKind];

/** A cgroup-kind target (what every backend in this folder opens). */
export type CgroupTarget = Extract<ActuatorTarget, { cgroup: string }>;

/**
 * What a directive can carry that a backend can express. Declared per backend, never found by
 * trial; the contract suite runs a capability's cases only for backends that declare it.
 */
export interface ActuatorCapabilities {
  /** A hard cap (`capCpuMillis`): CFS quota, a pod's limit, a vCPU quota. */
  cap: boolean;
  /** A relative weight (1..10000) that shares CPU under contention. */
  weight: boolean;
  /** Batch (`idle: true`): an idle class where the target has one, else the least weight. */
  idle: boolean;
  /** A burst above the cap out of banked time (`burstCpuMillis`). */
  burst: boolean;
  /** A CPU count (`cpuCount`): cpusets, vCPUs. */
  cpuCount: boolean;
  /** The cap's period (`capPeriodUs`): a CFS period. Without it the target keeps its own period. */
  capPeriod: boolean;
  /**
   * Placement (`openCpuset`): the CPUs a partition runs on, its cgroup's `cpuset.cpus`, where
   * that cgroup has a cpuset (src/policy/placement.ts decides them).
   */
  cpuset: boolean;
}

/**
 * An allocation as the target holds it, on the directive's scales (Kubernetes' "Actual"): the
 * kernel or an API may round or refuse what was submitted.
 */
export interface AppliedAllocation {
  /** Cap in millicores; Infinity = none. */
  capCpuMillis: number;
  /** Weight on the 1..10000 scale. */
  weight: number;
  /** In the idle class (absent where the target has none). */
  idle?: boolean;
  /** Burst in millicores (absent where the target has none). */
  burstCpuMillis?: number;
  /** CPUs it may run on (absent where the backend does not set them). */
  cpuCount?: number;
  /** The period the cap is enforced over, µs (absent where the target has none). */
  capPeriodUs?: number;
}

export interface PartitionActuator {
  readonly partition: PartitionId;
  /** What the partition's files hold now (taken once at start, for restore). */
  snapshot(): AllocationSnapshot;
  /**
   * Submit the directive; only values that differ from what was last submitted (or found at
   * open) are written. Never blocks the cycle: a file backend writes inline (microseconds); a
   * backend that talks to something slower (an API server, QMP) queues the change, returns at
   * once, and reports what took effect through `applied()` and a failure on a later call
   * (`ApplyResult.error` then names the value that failed; it is submitted again).
   */
  apply(directive: Directive): ApplyResult;
  /**
   * The last directive submitted, as this target expresses it, on the directive's scales
   * (Kubernetes' "Allocated"): rounded to the kernel's units, a cap below the quota floor as
   * the floor, batch at the idle weight, no burst where there is no cap. null before the
   * first apply(). `applied()` equals it once that directive is in force.
   */
  desired?(): AppliedAllocation | null;
  /**
   * What is in force as this actuator last observed it (Kubernetes' "Actual"): the values
   * found at open, then every write the target confirmed, on the directive's scales. Every
   * backend in src/actuators has it (the contract suite checks it against what the target
   * holds). The manager compares it with `desired()` every cycle (pending since when).
   */
  applied?(): AppliedAllocation;
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
  /** Target kinds this backend can manage (declared, never found by trial). */
  readonly handles: readonly TargetKind[];
  /** What it can express (the contract suite's gates). */
  readonly capabilities: ActuatorCapabilities;
  open(target: ActuatorTarget): PartitionActuator;
  /**
   * A dry-run twin (`--dry-run`, any backend): an actuator that starts from what `target` holds
   * now (read once, read-only) and decides exactly what `open(target)` would write, reporting it
   * in `ApplyResult.written`, but writes nothing. Throws as `open` does for a missing target.
   */
  openDryRun(target: ActuatorTarget): PartitionActuator;
  /**
   * The partition's cpuset (backends declaring `cpuset`): its `cpuset.cpus`, read and held at
   * once. Throws WeirError TARGET_NOT_WRITABLE naming the directory when the partition's cgroup
   * has no cpuset there (placement is then not available for it; the partition is not failed).
   * `found`: the value to restore instead of what the file holds now — what a manager found
   * before its first write, kept in its state file across a crash and a restart.
   */
  openCpuset?(target: ActuatorTarget, found?: string): CpusetActuator;
}

/** What writing a partition's CPUs did (`written`: the files written, [] when unchanged). */
export interface CpusetResult {
  written: string[];
  error?: WeirErrorInfo;
}

/**
 * One partition's `cpuset.cpus`: the value found at open (the snapshot, restored on orderly
 * shutdown), and writes of a CPU list only when it differs from what the file last held.
 */
export interface CpusetActuator {
  readonly partition: PartitionId;
  /** The file, for messages and the API. */
  readonly file: string;
  /**
   * What the file held before weir first wrote it, as the kernel prints it ("0-1"; "" on v2:
   * the parent's): what it held at open, or the `found` given to open (a restart's).
   */
  readonly found: string;
  /** Run on `cpus` (ascending); null: on the CPUs it was found with. */
  place(cpus: readonly number[] | null): CpusetResult;
  /** Write back the value found at open (when it differs). */
  restore(): CpusetResult;
  /** What the file holds as far as this actuator knows. */
  current(): string;
  close(): void;
}

/** What a backend is built from: the host's filesystem roots and a clock. */
export interface BackendContext {
  /** Where the kernel's files are (config `roots`): cgroupfs, sysfs, procfs. */
  roots: Readonly<{ cgroupfs: string; sysfs: string; procfs: string }>;
  /** Clock for records (recording backends). */
  now: () => number;
}

/**
 * A backend as the registry knows it (src/actuators/index.ts lists them): a new backend is its
 * own file exporting one of these, plus one line in that list.
 */
export interface BackendRegistration {
  /** What `partitions[].actuator` names. */
  name: string;
  /** Target kinds it manages. */
  handles: readonly TargetKind[];
  /** What it can express; the contract suite runs only the cases it declares. */
  capabilities: ActuatorCapabilities;
  description: string;
  create(ctx: BackendContext): ActuatorBackend;
}
