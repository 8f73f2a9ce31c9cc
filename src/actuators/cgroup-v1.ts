// cgroup v1 hypervisor: <cgroupfs>/cpu/<path>/cpu.cfs_quota_us (+ cpu.cfs_period_us) and cpu.shares.
//
// cap:    cpu.cfs_quota_us = cpuMillis * period / 1000 at the cgroup's own period (read at open,
//         never changed by apply), raised to the kernel's 1000 us minimum; -1 = unlimited.
// weight: cpu.shares = round(weight * 1024 / 100), the kernel's v2<->v1 conversion (formats.ts).
// Only values that differ from what the file last held are written: every write to
// cpu.cfs_quota_us refills the period's runtime (docs/measured-facts.md), so rewriting an unchanged quota
// would hand the partition extra CPU.
import { cgroupDir, openCgroupFiles, readCgroupFiles } from "./cgroup-files.ts";
import type { FileSetActuator } from "./engine.ts";
import { v1Format } from "./formats.ts";
import type { ActuatorBackend, ActuatorTarget } from "./types.ts";

export const CGROUP_V1 = "cgroup-v1";

export interface CgroupV1Options {
  /** Where the cgroup hierarchies are mounted; usually "/sys/fs/cgroup". */
  cgroupfs: string;
  /** The cpu controller's hierarchy under cgroupfs (default "cpu"; "cpu,cpuacct" on some hosts). */
  controller?: string;
}

export class CgroupV1Backend implements ActuatorBackend {
  readonly name = CGROUP_V1;
  readonly handles = ["cgroup"] as const;
  readonly format = v1Format;
  private readonly root: string;

  constructor(opts: CgroupV1Options) {
    this.root = cgroupDir(opts.cgroupfs, opts.controller ?? "cpu");
  }

  /** The directory holding a cgroup's cpu files. */
  dirOf(cgroup: string): string {
    return cgroupDir(this.root, cgroup);
  }

  open(target: ActuatorTarget): FileSetActuator {
    return openCgroupFiles({
      backend: this.name,
      partition: target.partition,
      dir: this.dirOf(target.cgroup),
      format: v1Format,
    });
  }

  /** Read the allocation files once without holding them (dry-run seed, status). */
  read(cgroup: string): Record<string, string> {
    return readCgroupFiles(this.name, this.dirOf(cgroup), v1Format);
  }
}

export const createCgroupV1Backend = (opts: CgroupV1Options): CgroupV1Backend =>
  new CgroupV1Backend(opts);
