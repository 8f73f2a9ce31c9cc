// cgroup v2 hypervisor: <cgroupfs>/<path>/cpu.max ("<quota> <period>" or "max <period>") and
// cpu.weight (1..10000); on a hybrid host whose cpu controller is on cgroup2, under
// <cgroupfs>/unified (src/cgroup/layout.ts).
//
// cap:    quota = cpuMillis * period / 1000 at the period cpu.max already holds (kept, never
//         changed by apply), raised to the kernel's 1000 us minimum; "max" = unlimited.
// weight: the directive's weight as is (it is on the v2 scale), clamped to 1..10000.
// Only values that differ from what the file last held are written (see cgroup-v1.ts for why).
import { v2Format } from "../cgroup/formats.ts";
import {
  CgroupFilesBackend,
  type CgroupVersionBackend,
  cgroupVersionRegistration,
} from "./cgroup-files.ts";

export const CGROUP_V2: CgroupVersionBackend = {
  name: "cgroup-v2",
  version: 2,
  format: v2Format,
  description: "cgroup v2: cpu.max and cpu.weight",
};

export class CgroupV2Backend extends CgroupFilesBackend {
  /** `cgroupfs`: where the cgroup hierarchies are mounted; usually "/sys/fs/cgroup". */
  constructor(opts: { cgroupfs: string }) {
    super({ ...CGROUP_V2, cgroupfs: opts.cgroupfs });
  }
}

export const cgroupV2Registration = cgroupVersionRegistration(CGROUP_V2);
