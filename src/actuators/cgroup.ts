// The "cgroup" backend: cgroup v1 or v2, whichever holds this host's cpu controller, chosen
// when a target is opened (src/cgroup/layout.ts decides, once for all).
import { detectCgroupLayout } from "../cgroup/layout.ts";
import { CgroupV1Backend } from "./cgroup-v1.ts";
import { CgroupV2Backend } from "./cgroup-v2.ts";
import { CGROUP_FILE_CAPABILITIES, type FileSetActuator } from "./engine.ts";
import type {
  ActuatorBackend,
  ActuatorTarget,
  BackendRegistration,
  CpusetActuator,
} from "./types.ts";

export class CgroupBackend implements ActuatorBackend {
  readonly name = "cgroup";
  readonly handles = ["cgroup"] as const;
  readonly capabilities = CGROUP_FILE_CAPABILITIES;
  private readonly v1: CgroupV1Backend;
  private readonly v2: CgroupV2Backend;
  private readonly cgroupfs: string;

  constructor(o: { cgroupfs: string }) {
    this.cgroupfs = o.cgroupfs;
    this.v1 = new CgroupV1Backend({ cgroupfs: o.cgroupfs });
    this.v2 = new CgroupV2Backend({ cgroupfs: o.cgroupfs });
  }

  /** The backend for this host's layout (throws CGROUP_GONE when it has no cpu controller). */
  forHost(): CgroupV1Backend | CgroupV2Backend {
    return detectCgroupLayout(this.cgroupfs).version === 2 ? this.v2 : this.v1;
  }

  open(target: ActuatorTarget): FileSetActuator {
    return this.forHost().open(target);
  }

  openDryRun(target: ActuatorTarget): FileSetActuator {
    return this.forHost().openDryRun(target);
  }

  openCpuset(target: ActuatorTarget, found?: string): CpusetActuator {
    return this.forHost().openCpuset(target, found);
  }
}

export const cgroupRegistration: BackendRegistration = {
  name: "cgroup",
  handles: ["cgroup"],
  capabilities: CGROUP_FILE_CAPABILITIES,
  description: "cgroup v1 or v2, whichever has the host's cpu controller",
  create: (ctx) => new CgroupBackend({ cgroupfs: ctx.roots.cgroupfs }),
};
