// What `testbedUp` is asked for and where it looks: the roots of /sys/fs/cgroup, /proc, /sys
// and /run/netns (tests point them elsewhere), the partitions and hogs with their defaults
// filled in, and the root check every testbed command makes first.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { defaultHogNames, defaultPartitionNames, validatePartitionName } from "./names.ts";
import type { NetRoots } from "./net.ts";

export interface TestbedRoots {
  cgroupfs: string;
  procfs: string;
  sysfs: string;
  netnsDir: string;
}

export const defaultTestbedRoots: TestbedRoots = {
  cgroupfs: "/sys/fs/cgroup",
  procfs: "/proc",
  sysfs: "/sys",
  netnsDir: "/run/netns",
};

/** The testbed's roots with defaults filled in. */
export const testbedRoots = (roots: Partial<TestbedRoots> | undefined): TestbedRoots => ({
  ...defaultTestbedRoots,
  ...roots,
});

/** The roots the network helpers (net.ts) read. */
export const netRootsOf = (roots: TestbedRoots): NetRoots => ({
  netnsDir: roots.netnsDir,
  sysfs: roots.sysfs,
  procfs: roots.procfs,
});

export interface PartitionRequest {
  /** [a-z][a-z0-9]{0,15}, no dash. */
  name: string;
  costRounds?: number;
  port?: number;
}

export interface HogRequest {
  name: string;
  /** Busy threads (default 1). */
  cpus?: number;
}

export interface TestbedOptions {
  /** Name prefix of everything created (default "weir"); tests use unique ones. */
  prefix?: string;
  /** A count (names p1..pN) or named partitions. */
  partitions: number | PartitionRequest[];
  /** A count (names hog1..hogN) or named hogs. Default none. */
  hogs?: number | HogRequest[];
  /** SHA-256 rounds per request for every partition without its own (default 600). */
  costRounds?: number;
  /**
   * Processes serving each packet server's sockets (default 1; more lets one partition's
   * server use that many CPUs: serve.ts `runServeProcess`, `--workers`).
   */
  serverWorkers?: number;
  /**
   * Each packet server keeps its heap steady (`--steady-heap`, steady-heap.ts), so the host's
   * memory reclaim does not stall it in brk (default true: the testbed measures CPU policy;
   * false: malloc's defaults).
   */
  steadyServerHeap?: boolean;
  /**
   * Partitions on the host network: no netns or veth; each server on 127.0.0.1 at a free
   * port of its own (`port` is ignored), in its cgroup, counted by eBPF. Default false.
   */
  hostNetwork?: boolean;
  /** UDP port of every packet server without its own (default 9000). */
  port?: number;
  /** Servers and hogs exit by themselves after this long (default 1 h). */
  maxLifetimeMs?: number;
  /** Default /run/weir/testbed-<prefix>.json. */
  stateFile?: string;
  /** Lock that serialises address allocation between testbeds (default /run/weir/addr.lock). */
  lockFile?: string;
  /** How long to wait for every server to answer a probe (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * CPU share of the whole testbed (the <prefix> cgroup) against everything else on the
   * host, on the v1 cpu.shares scale (1024 = one ordinary process; v2 converts to
   * cpu.weight). Unset: left at the kernel's default.
   */
  groupCpuShares?: number;
  /** On a failure, tear down what this call recorded before throwing (default true). */
  cleanupOnError?: boolean;
  roots?: Partial<TestbedRoots>;
  log?: (line: string) => void;
  now?: () => number;
}

/** The partitions and hogs `opts` asks for, named, checked and with every default filled in. */
export interface WantedTestbed {
  hostNetwork: boolean;
  serverWorkers: number;
  steadyServerHeap: boolean;
  partitions: Required<PartitionRequest>[];
  hogs: Required<HogRequest>[];
}

export function requireRoot(what: string, needs = "network namespaces, veth, cgroups"): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new WeirError(ErrorCodes.NOT_ROOT, `${what} needs root (${needs})`);
  }
}

export const logFileFor = (stateFile: string, name: string) =>
  `${stateFile.replace(/\.json$/, "")}.${name}.log`;

export function wantedTestbed(opts: TestbedOptions): WantedTestbed {
  const costRounds = opts.costRounds ?? 600;
  const port = opts.port ?? 9000;
  const parts: PartitionRequest[] =
    typeof opts.partitions === "number"
      ? defaultPartitionNames(opts.partitions).map((name) => ({ name }))
      : opts.partitions;
  const hogs: HogRequest[] =
    opts.hogs === undefined
      ? []
      : typeof opts.hogs === "number"
        ? defaultHogNames(opts.hogs).map((name) => ({ name }))
        : opts.hogs;
  const seen = new Set<string>();
  for (const n of [...parts.map((p) => p.name), ...hogs.map((h) => h.name)]) {
    validatePartitionName(n);
    if (seen.has(n))
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `partition name ${JSON.stringify(n)} is used twice`,
      );
    seen.add(n);
  }
  const serverWorkers = opts.serverWorkers ?? 1;
  if (!Number.isInteger(serverWorkers) || serverWorkers < 1 || serverWorkers > 64)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `'serverWorkers' must be an integer within 1..64: current value is ${serverWorkers}`,
    );
  return {
    hostNetwork: opts.hostNetwork ?? false,
    serverWorkers,
    steadyServerHeap: opts.steadyServerHeap ?? true,
    partitions: parts.map((p) => ({
      name: p.name,
      costRounds: p.costRounds ?? costRounds,
      port: p.port ?? port,
    })),
    hogs: hogs.map((h) => ({ name: h.name, cpus: h.cpus ?? 1 })),
  };
}
