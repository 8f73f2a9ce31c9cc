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
}

export interface PartitionSensor {
  /** Read every counter once. Throws WeirError (CGROUP_GONE, INTERFACE_GONE, PROCESS_GONE, COUNTER_MALFORMED). */
  read(nowMs: number): CounterSample;
  close(): void;
}
