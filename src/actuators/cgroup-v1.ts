// cgroup v1 hypervisor: <cgroupfs>/cpu/<path>/cpu.cfs_quota_us (+ cpu.cfs_period_us) and cpu.shares.
//
// cap:    cpu.cfs_quota_us = cpuMillis * period / 1000 at the cgroup's own period (read at open,
//         never changed by apply), raised to the kernel's 1000 us minimum; -1 = unlimited.
// weight: cpu.shares = round(weight * 1024 / 100), the kernel's v2<->v1 conversion
//         (src/cgroup/values.ts).
// Only values that differ from what the file last held are written: every write to
// cpu.cfs_quota_us refills the period's runtime (docs/measured-facts.md), so rewriting an unchanged quota
// would hand the partition extra CPU.
import { v1Format } from "../cgroup/formats.ts";
import {
  CgroupFilesBackend,
  type CgroupVersionBackend,
  cgroupVersionRegistration,
} from "./cgroup-files.ts";

export const CGROUP_V1: CgroupVersionBackend = {
  name: "cgroup-v1",
  version: 1,
  format: v1Format,
  description: "cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us and cpu.shares",
};

export class CgroupV1Backend extends CgroupFilesBackend {
  /** `cgroupfs`: where the cgroup hierarchies are mounted; usually "/sys/fs/cgroup". */
  constructor(opts: { cgroupfs: string }) {
    super({ ...CGROUP_V1, cgroupfs: opts.cgroupfs });
  }
}

export const cgroupV1Registration = cgroupVersionRegistration(CGROUP_V1);
