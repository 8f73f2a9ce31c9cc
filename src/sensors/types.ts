// Contract of a sensor: reads a partition's cumulative counters, synchronously, on held fds.
import type { CounterSample } from "../core/model.ts";

/** Where the kernel's files are; tests point these at fixture trees. */
export interface Roots {
  /** Usually "/sys". */
  sysfs: string;
  /** Usually "/proc". */
  procfs: string;
  /** Usually "/sys/fs/cgroup". */
  cgroupfs: string;
}

export const defaultRoots: Roots = { sysfs: "/sys", procfs: "/proc", cgroupfs: "/sys/fs/cgroup" };

/** Which direction of an interface counts as offered (arriving requests) and served (replies). */
export type Direction = "rx" | "tx";

export interface InterfaceSpec {
  name: string;
  /** For the host side of a veth: offered = "tx" (host sends to the partition), served = "rx". */
  offered: Direction;
  served: Direction;
}

/** What to read for one partition (from config). */
export interface SensorSpec {
  /** cgroup path relative to the cgroup root, e.g. "weir/web". */
  cgroup: string;
  /** Interfaces whose counters belong to the partition (host side), if any. */
  interfaces: InterfaceSpec[];
  /** A pid inside the partition's network namespace: its /proc/<pid>/net/{dev,snmp} view. */
  pid?: number;
  /** Interfaces inside the namespace to count through /proc/<pid>/net/dev (default: all but lo). */
  netnsInterfaces?: InterfaceSpec[];
  /**
   * The packet counter sources to read and add up (sources.ts), each with its own options.
   * Absent: `interfaces` when there are any, plus `pid` when a pid is given (the default that
   * `defaultPacketSources` spells out).
   */
  packets?: PacketSourceChoice[];
}

/** One counter source chosen for a partition, with the options its registration parsed. */
export interface PacketSourceChoice {
  name: string;
  options?: unknown;
}

/** Packets offered, served and dropped, cumulative (what every counter source reads). */
export interface PacketCounts {
  /** Offered-direction packets plus offered-direction drops. */
  offeredPackets: number;
  servedPackets: number;
  /** Packets lost on the way in. */
  droppedPackets: number;
  /**
   * Bytes of the packets the partition's sockets received and sent, by hook, when the source
   * counts them (`bpf`: the skb's length at the cgroup hook, IP header on; see src/bpf/README.md).
   */
  ingressBytes?: number;
  egressBytes?: number;
}

/** One opened counter source of one partition: cumulative counts, re-read on held handles. */
export interface PacketCounter {
  /**
   * Every count once, cumulative since the source began counting. Throws WeirError: the
   * source's own codes (INTERFACE_GONE, PROCESS_GONE, COUNTER_UNREADABLE, ...). Reads with the
   * same `round` may share a read of a host-wide file; without one the counts are read now.
   */
  read(round?: SampleRound): PacketCounts;
  /** Release what it holds; idempotent. */
  close(): void;
}

/**
 * The latest counters a partition's agent reported, by partition (the manager's report
 * sources, whatever transport carried them); undefined when it sent none yet.
 */
export interface AgentPacketFeed {
  latest(partition: string): PacketCounts | undefined;
}

/** What a counter source gets when it is opened for one partition. */
export interface CounterSourceContext {
  /** The partition's name (for errors). */
  partition: string;
  spec: SensorSpec;
  roots: Roots;
  /** The options its registration's `parseOptions` returned (undefined without options). */
  options: unknown;
  /** Agent reports, for sources fed by the partition's agent. */
  agentReports?: AgentPacketFeed;
  /**
   * What the operator should know of the opening that is not an error (logged by `weir run` at
   * info level): e.g. the bpf source's pinned programs taken off the cgroup the partition had.
   */
  note?: (message: string) => void;
}

/** A problem with a source's options: where in them, which rule, what value. */
export interface OptionIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * One cycle's sampling of every partition: reads given the same round may share one read of a
 * host-wide file (the `interfaces` source's `<procfs>/net/dev`). The manager makes a fresh
 * object (`{}`) per cycle; a read without a round reads every file again.
 */
export type SampleRound = object;

export interface PartitionSensor {
  /** Read every counter once. Throws WeirError (CGROUP_GONE, INTERFACE_GONE, PROCESS_GONE, COUNTER_MALFORMED). */
  read(nowMs: number, round?: SampleRound): CounterSample;
  /**
   * Whether a CFS quota is in force on the partition's cgroup, as its owner knows it (null:
   * cannot say). A sensor opened with `throttlingOnlyUnderQuota` reads the throttling counters
   * only while one may be (partition.ts); others ignore it.
   */
  quotaInForce?(inForce: boolean | null): void;
  close(): void;
}

/**
 * Cumulative CPU time of all CPUs together since boot, from /proc/stat's `cpu` line, in the
 * kernel's USER_HZ clock ticks (`getconf CLK_TCK`). Guest time is already inside user/nice.
 */
export interface HostCpuTicks {
  userTicks: number;
  niceTicks: number;
  systemTicks: number;
  idleTicks: number;
  iowaitTicks: number;
  irqTicks: number;
  softirqTicks: number;
  stealTicks: number;
}

/** USER_HZ: /proc/stat's tick rate on every architecture weir runs on (x86, arm, riscv...). */
export const PROC_STAT_TICKS_PER_SEC = 100;

/** One reading of the host's CPU counters. */
export interface HostCpuSample {
  atMs: number;
  /** Online CPUs (the `cpuN` lines). */
  cpus: number;
  ticks: HostCpuTicks;
}

/** Reads the host's cumulative CPU counters (held /proc/stat, or the simulator's machine). */
export interface HostCpuSensor {
  /** Throws WeirError (COUNTER_UNREADABLE, COUNTER_MALFORMED) when it cannot. */
  read(nowMs: number): HostCpuSample;
  close(): void;
}
