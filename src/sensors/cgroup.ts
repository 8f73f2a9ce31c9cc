// System activity counters: a cgroup's CPU usage and CFS throttling, on cgroup v1
// (cpuacct.usage + cpu/cpu.stat) or v2 (cpu.stat), in the host's layout (src/cgroup).
import path from "node:path";
import { locateCgroup, type PartitionCgroup } from "../cgroup/paths.ts";
import { ErrorCodes } from "../core/errors.ts";
import { type FailureClassifier, goneClassifier, HeldFile } from "./held-file.ts";
import { type CpuCounters, parseCounterValue, parseCpuStatV1, parseCpuStatV2 } from "./parse.ts";

/**
 * The files a cgroup's CPU sample reads: v1 `<cpuacct>/cpuacct.usage` and `<cpu>/cpu.stat`
 * (throttling), v2 `<dir>/cpu.stat` (usage and throttling). Where the dirs are is src/cgroup's.
 */
export const cpuCounterFiles = (cgroup: PartitionCgroup): string[] =>
  cgroup.version === 1
    ? [path.join(cgroup.cpuacct, "cpuacct.usage"), path.join(cgroup.cpu, "cpu.stat")]
    : [path.join(cgroup.cpu, "cpu.stat")];

/** A vanished cgroup file is CGROUP_GONE (terminal); anything else is retryable. */
export const cgroupFailure = (cgroupPath: string): FailureClassifier =>
  goneClassifier(ErrorCodes.CGROUP_GONE, `cgroup ${cgroupPath}`, false);

/** A cgroup's CPU counters on held descriptors (v1: two files, v2: one). */
export class HeldCgroupCpuCounters {
  /** Where the partition's cgroup is (found in the host's layout unless given). */
  readonly cgroup: PartitionCgroup;
  private readonly files: HeldFile[];

  /** Throws CGROUP_GONE (terminal) when the host has no such cgroup. */
  constructor(cgroupfs: string, cgroupPath: string, cgroup?: PartitionCgroup) {
    this.cgroup = cgroup ?? locateCgroup(cgroupfs, cgroupPath);
    const opts = { reopenOnStale: true, classify: cgroupFailure(cgroupPath) };
    this.files = [];
    try {
      for (const file of cpuCounterFiles(this.cgroup))
        this.files.push(
          new HeldFile(file, { ...opts, sizeHint: file.endsWith(".usage") ? 32 : 512 }),
        );
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(): CpuCounters {
    const [a, b] = this.files;
    if (this.cgroup.version === 2) return parseCpuStatV2(a!.read(), a!.path);
    const usageNs = parseCounterValue(a!.read(), a!.path);
    return { usageNs, ...parseCpuStatV1(b!.read(), b!.path) };
  }

  /** CPU used alone, ns: v1 reads `cpuacct.usage` without `cpu.stat` (v2: `cpu.stat`, as `read`). */
  readUsageNs(): number {
    const a = this.files[0]!;
    if (this.cgroup.version === 2) return parseCpuStatV2(a.read(), a.path).usageNs;
    return parseCounterValue(a.read(), a.path);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** One-off read (open-read-close) of a cgroup's CPU counters. */
export function readCgroupCpuCounters(cgroupfs: string, cgroupPath: string): CpuCounters {
  const c = new HeldCgroupCpuCounters(cgroupfs, cgroupPath);
  try {
    return c.read();
  } finally {
    c.close();
  }
}
