// The shapes that flow through one cycle: observations -> policy -> directives -> actuators -> record.
import type { CpuMillis } from "./units.ts";

export type PartitionId = string;

/** 1 is the most important, 5 the least (z/OS WLM convention). */
export type Importance = 1 | 2 | 3 | 4 | 5;

/** Cumulative counters of one partition at one instant (what a sensor or an agent reads). */
export interface CounterSample {
  atMs: number;
  /** Packets that arrived for the partition (requests), cumulative. */
  offeredPackets: number;
  /** Packets the partition sent back (replies), cumulative. */
  servedPackets: number;
  /** Packets dropped on the way in (interface drops + socket RcvbufErrors/InErrors), cumulative. */
  droppedPackets: number;
  /**
   * Bytes the partition's sockets received / sent, cumulative, when a counter source counts
   * bytes (`bpf`: IP packet length at the cgroup's inet ingress / egress hook). Else undefined.
   */
  ingressBytes?: number;
  egressBytes?: number;
  /** CPU time the partition used, cumulative, nanoseconds. */
  cpuUsageNs: number;
  /**
   * When the CPU counters (cpuUsageNs and the throttling counters) were read, when that was
   * before `atMs`: a sensor that did not read them for this sample carries the last ones it
   * read (sensors' `idleCpuReadEveryMs`). Absent: read at `atMs`.
   */
  cpuAtMs?: number;
  /** CFS periods elapsed and periods throttled, cumulative (0 when unknown). */
  nrPeriods: number;
  nrThrottled: number;
  /** Total throttled time, cumulative, nanoseconds. */
  throttledNs: number;
  /**
   * Time the partition's tasks were runnable but waiting for a CPU, cumulative, nanoseconds
   * (PSI `cpu.pressure` "some" total on cgroup v2, else the tasks' `run_delay` from
   * `/proc/<tid>/schedstat`). Undefined when it cannot be read.
   */
  cpuDelayNs?: number;
}

/** Throughput information of one partition over one window (the patent's "throughput information"). */
export interface Throughput {
  partition: PartitionId;
  windowMs: number;
  offeredPacketsPerSec: number;
  servedPacketsPerSec: number;
  droppedPacketsPerSec: number;
  /** CPU used over the window, in cores (0.25 = a quarter of one CPU). */
  cpuCores: number;
  /**
   * Set when cpuCores is not over this window: the span it is over, ms, when the CPU counters
   * were read at other times than the packets (a sensor that leaves an idle partition's CPU
   * unread for a while: sensors' `idleCpuReadEveryMs`); 0 when they were not read in this
   * window at all (cpuCores is then the latest span's, carried by the manager). Absent: windowMs.
   */
  cpuWindowMs?: number;
  /** Fraction of CFS periods in the window that were throttled, 0..1. */
  throttledFraction: number;
  /**
   * CPU delay: time runnable but waiting for a CPU ÷ (that time + CPU used), 0..1, over the
   * window (WLM's execution delay: 1 - using ÷ (using + delay)). A closed-loop server that
   * neither drops nor is throttled shows its contention here. Undefined/null when unknown.
   */
  cpuDelayFraction?: number | null;
  /** Served packets per CPU-second over this window alone (null when CPU used was too small to tell). */
  rawVelocityPacketsPerCpuSec: number | null;
  /**
   * Bytes per second the partition's sockets received / sent over the window (IP packet
   * length at the cgroup hooks), when its counter source counts bytes (`bpf`); else absent.
   */
  ingressBytesPerSec?: number;
  egressBytesPerSec?: number;
  /** Where the numbers came from. */
  source: "host" | "agent" | "sim";
  /**
   * "host" when an agent-fed partition's throttledFraction and cpuDelayFraction come from its
   * cgroup on the host (a guest's QEMU cgroup), not its report.
   */
  congestionFrom?: "host";
  /** Set when host and agent disagreed; the host's values are the ones above. */
  disagreement?: string;
}

/** What the policy knows about one partition's bounds and goals (from config, or runtime changes). */
export interface PartitionSpec {
  id: PartitionId;
  /** Guarantee: never allocated less. */
  minCpuMillis: CpuMillis;
  /** Limit: never allocated more. */
  maxCpuMillis: CpuMillis;
  /** Relative share within an importance tier and for left-over capacity. */
  weight: number;
  importance: Importance;
  /** Optional goal: packets per second the partition must sustain. */
  goalPacketsPerSec?: number;
  /** Best-effort partitions (batch) have no traffic signal: they get only what is left. */
  kind: "network" | "batch";
  /**
   * PR/SM's capped mode: the partition never uses more than its entitlement, even when CPU is
   * idle (a tenant that pays for X). Uncapped partitions (the default) may use any idle CPU.
   */
  capped?: boolean;
  /**
   * Held to its guarantee by the manager this cycle (its throughput is stale: an agent silent,
   * host counters unreadable, for staleAfterMs): entitled to its `minCpuMillis` at most, as a
   * weight, while its `maxCpuMillis` stays what it was configured for — its cap only when that
   * is below capacity, and its CPU count. Work-conserving like any entitlement: a stale
   * partition still takes CPU nobody else wants.
   */
  held?: boolean;
}

/** Why a directive carries a hard cap (weights alone express every other entitlement). */
export type CapReason =
  /** The partition's configured `max` is below capacity. */
  | "max"
  /** The partition is configured `capped: true` (PR/SM capped mode): cap = entitlement. */
  | "capped"
  /** Batch held to its entitlement while a network partition is congested and weights alone did not relieve it. */
  | "suppress-batch"
  /**
   * A goal partition that meets its goal with room to spare, held to what its goal needs while
   * a less important partition wants CPU, in long CFS periods (`capPeriodUs`): both run in long
   * slices instead of interleaving.
   */
  | "goal-donor";

/**
 * A resource-balancing directive for one partition for this cycle. The entitlement is
 * expressed first as a weight (work-conserving: idle CPU flows to whoever can use it); batch
 * runs in the idle class; a cap is set only where it protects (capReason says why).
 */
export interface Directive {
  partition: PartitionId;
  /** Entitlement in millicores: what the partition gets under full contention. */
  cpuMillis: CpuMillis;
  /** CPU weight on the cgroup v2 scale 1..10000 (v1 cpu.shares is derived), proportional to the entitlement. */
  weight: number;
  /** Run in the kernel's idle scheduling class (`cpu.idle = 1`); where the kernel has none, at the minimum weight. */
  idle: boolean;
  /** Hard cap in millicores (cgroup v2 cpu.max / v1 cfs_quota_us); Infinity = no cap. */
  capCpuMillis: CpuMillis;
  /** CFS burst a capped partition may use above its cap after idling (cpu.max.burst / cfs_burst_us), millicores; 0 = none. */
  burstCpuMillis: CpuMillis;
  /** Why there is a cap; null when capCpuMillis is Infinity. */
  capReason: CapReason | null;
  /**
   * The CFS period the cap is enforced over, microseconds (cgroup v2 `cpu.max`'s second field,
   * v1 `cpu.cfs_period_us`; 1,000..1,000,000). Absent: the period the target had when it was
   * opened. A long period lets a capped partition and its neighbours run in long slices, at the
   * cost of the capped one's latency once its quota is spent (up to the rest of the period).
   */
  capPeriodUs?: number;
  /** Whole CPUs the partition should run on (ceil of the entitlement), for agents and apps. */
  cpuCount: number;
}

/** Result of applying one directive. */
export interface ApplyResult {
  partition: PartitionId;
  /** Files or fields actually written this time (empty when nothing changed). */
  written: string[];
  /** Set when the write failed; the partition keeps what it had. */
  error?: WeirErrorInfo;
}

export interface WeirErrorInfo {
  code: string;
  message: string;
  /** Terminal errors (cgroup gone) mark the partition gone; retryable ones are retried next cycle. */
  retryable: boolean;
}

/** The policy's verdict on one partition: numbers and a sentence a person can read. */
export interface Decision {
  partition: PartitionId;
  demandCpuMillis: CpuMillis;
  previousCpuMillis: CpuMillis;
  cpuMillis: CpuMillis;
  velocityPacketsPerCpuSec: number | null;
  /** Performance index = goal / achieved (> 1 misses the goal); null without a goal. */
  performanceIndex: number | null;
  why: string;
}

export type PartitionStatus = "ok" | "gone" | "error" | "stale";

/**
 * The whole host's CPU over one cycle's window (/proc/stat's `cpu` line): whether CPU is left
 * idle or flows to someone. idleFraction + busyCores ÷ cpus + stealFraction = 1.
 */
export interface HostCpuUse {
  /** Online CPUs of the host (the `cpuN` lines of /proc/stat). */
  cpus: number;
  /** Fraction of all CPU time that was idle (idle + iowait), 0..1. */
  idleFraction: number;
  /** CPU in use on the host, in cores (user + nice + system + irq + softirq; guest time is inside user). */
  busyCores: number;
  /** Fraction of all CPU time a hypervisor ran someone else while this host wanted to run (steal), 0..1. */
  stealFraction: number;
}

/** One cycle's record: what was read, decided, written and how long each phase took. */
export interface CycleRecord {
  cycle: number;
  startedAtMs: number;
  intervalMs: number;
  capacityCpuMillis: CpuMillis;
  partitions: Array<{
    id: PartitionId;
    status: PartitionStatus;
    throughput: Throughput | null;
    decision: Decision | null;
    directive: Directive | null;
    written: string[];
    error?: WeirErrorInfo;
    /**
     * The manager's own entries: `throughput`'s values in an object lent for an immediate
     * read (the next call, on any entry, overwrites it), so a reader that keeps nothing (the
     * metrics, every cycle) makes no object. Absent on a plain or JSON-decoded entry.
     */
    peekThroughput?(): Throughput | null;
  }>;
  /**
   * The host's CPU over this cycle's window; null when it could not be read (or on the first
   * cycle); absent when the manager was built without a host CPU sensor.
   */
  host?: HostCpuUse | null;
  timingsMs: { sample: number; reports: number; policy: number; apply: number; total: number };
  /**
   * The manager's own records: `partitions` as the columns they are made from (a property
   * that is not enumerable: not in the JSON, a spread or a deep equality), for a reader that
   * runs every cycle and makes no entry. Absent on a plain or JSON-decoded record.
   */
  readonly columns?: CyclePartitionColumns;
}

/** A cycle record's partitions as columns, by index in `partitions` (CycleRecord.columns). */
export interface CyclePartitionColumns {
  readonly size: number;
  readonly ids: readonly PartitionId[];
  readonly status: readonly PartitionStatus[];
  /** `partitions[k].directive`. */
  readonly directives: readonly (Directive | null)[];
  /** `partitions[k].written` (undefined: an empty list). */
  readonly written: readonly (string[] | undefined)[];
  /** `partitions[k].error`; null: no partition has one. */
  readonly errors: ReadonlyArray<WeirErrorInfo | undefined> | null;
  /** `partitions[k].throughput`'s values lent as peekThroughput lends them (read at once). */
  peekThroughput(k: number): Throughput | null;
  /** `partitions[k].decision`. */
  decision(k: number): Decision | null;
  /** `partitions[k].decision?.velocityPacketsPerCpuSec`, making no decision object. */
  decisionVelocity(k: number): number | null | undefined;
}
