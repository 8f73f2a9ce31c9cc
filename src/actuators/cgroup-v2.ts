// cgroup v2 hypervisor: <cgroupfs>/<path>/cpu.max ("<quota> <period>" or "max <period>") and
// cpu.weight (1..10000).
//
// cap:    quota = cpuMillis * period / 1000 at the period cpu.max already holds (kept, never
//         changed by apply), raised to the kernel's 1000 us minimum; "max" = unlimited.
// weight: the directive's weight as is (it is on the v2 scale), clamped to 1..10000.
// Only values that differ from what the file last held are written (see cgroup-v1.ts for why).
import { cgroupDir, openCgroupFiles, readCgroupFiles } from "./cgroup-files.ts";
import type { FileSetActuator } from "./engine.ts";
import { v2Format } from "./formats.ts";
import type { ActuatorBackend, ActuatorTarget } from "./types.ts";

export const CGROUP_V2 = "cgroup-v2";

export interface CgroupV2Options {
  /** Where the unified hierarchy is mounted; usually "/sys/fs/cgroup". */
  cgroupfs: string;
}

export class CgroupV2Backend implements ActuatorBackend {
  readonly name = CGROUP_V2;
  readonly handles = ["cgroup"] as const;
  readonly format = v2Format;
  private readonly root: string;

  constructor(opts: CgroupV2Options) {
    this.root = opts.cgroupfs;
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
      format: v2Format,
    });
  }

  /** Read the allocation files once without holding them (dry-run seed, status). */
  read(cgroup: string): Record<string, string> {
    return readCgroupFiles(this.name, this.dirOf(cgroup), v2Format);
  }
}

export const createCgroupV2Backend = (opts: CgroupV2Options): CgroupV2Backend =>
  new CgroupV2Backend(opts);
