// Actuator backends by name, with the partition kinds each declares it handles. Nothing is
// found by trial: a backend is picked by name from config, and "cgroup" writes the version
// the host's layout has its cpu controller on (src/cgroup/layout.ts decides, once for all).
import type { CpuFileFormat } from "../cgroup/formats.ts";
import { detectCgroupLayout } from "../cgroup/layout.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { CGROUP_V1, CgroupV1Backend } from "./cgroup-v1.ts";
import { CGROUP_V2, CgroupV2Backend } from "./cgroup-v2.ts";
import type { FileSetActuator } from "./engine.ts";
import { RECORDING, RecordingBackend } from "./recording.ts";
import type { ActuatorBackend, ActuatorTarget } from "./types.ts";

export interface BackendOptions {
  /** Where cgroups are mounted; usually "/sys/fs/cgroup". */
  cgroupfs: string;
  /** Clock for records (recording backends). */
  now?: () => number;
}

/** cgroup v1 or v2, whichever holds this host's cpu controller, chosen when a target is opened. */
export class CgroupBackend implements ActuatorBackend {
  readonly name = "cgroup";
  readonly handles = ["cgroup"] as const;
  private readonly v1: CgroupV1Backend;
  private readonly v2: CgroupV2Backend;
  private readonly o: BackendOptions;

  constructor(o: BackendOptions) {
    this.o = o;
    this.v1 = new CgroupV1Backend({ cgroupfs: o.cgroupfs });
    this.v2 = new CgroupV2Backend({ cgroupfs: o.cgroupfs });
  }

  /** The backend for this host's layout (throws CGROUP_GONE when it has no cpu controller). */
  forHost(): CgroupV1Backend | CgroupV2Backend {
    return detectCgroupLayout(this.o.cgroupfs).version === 2 ? this.v2 : this.v1;
  }

  open(target: ActuatorTarget): FileSetActuator {
    return this.forHost().open(target);
  }
}

/**
 * `--dry-run`: a recording backend whose cgroups start as the real ones are (read once,
 * read-only, in the host's layout). It writes nothing to the host and records what
 * the cgroup backend would have written.
 */
export function createDryRunBackend(o: BackendOptions): RecordingBackend {
  const real = new CgroupBackend(o);
  return new RecordingBackend({
    name: "dry-run",
    now: o.now,
    format: (): CpuFileFormat => real.forHost().format,
    seed: (t) => real.forHost().read(t.cgroup),
  });
}

export interface BackendRegistration {
  name: string;
  /** Partition kinds it manages (config picks a backend whose handles include the kind). */
  handles: readonly string[];
  description: string;
  create(opts: BackendOptions): ActuatorBackend;
}

const registry = new Map<string, BackendRegistration>();

/** Add a backend; a name can be registered once. */
export function registerActuatorBackend(reg: BackendRegistration): void {
  if (registry.has(reg.name))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `actuator backend "${reg.name}" is already registered`,
    );
  registry.set(reg.name, reg);
}

/** Every registered backend, in registration order. */
export function actuatorBackends(): readonly BackendRegistration[] {
  return [...registry.values()];
}

/** Names of the backends that declare they handle `kind`. */
export function backendsHandling(kind: string): string[] {
  return actuatorBackends()
    .filter((r) => r.handles.includes(kind))
    .map((r) => r.name);
}

/** Build a backend by name; an unknown name is a config error that lists the known ones. */
export function createActuatorBackend(name: string, opts: BackendOptions): ActuatorBackend {
  const reg = registry.get(name);
  if (!reg)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `actuator backend must be one of ${[...registry.keys()].join(", ")}: current value is "${name}"`,
    );
  return reg.create(opts);
}

registerActuatorBackend({
  name: "cgroup",
  handles: ["cgroup"],
  description: "cgroup v1 or v2, whichever has the host's cpu controller",
  create: (o) => new CgroupBackend(o),
});
registerActuatorBackend({
  name: CGROUP_V1,
  handles: ["cgroup"],
  description: "cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us and cpu.shares",
  create: (o) => new CgroupV1Backend({ cgroupfs: o.cgroupfs }),
});
registerActuatorBackend({
  name: CGROUP_V2,
  handles: ["cgroup"],
  description: "cgroup v2: cpu.max and cpu.weight",
  create: (o) => new CgroupV2Backend({ cgroupfs: o.cgroupfs }),
});
registerActuatorBackend({
  name: "dry-run",
  handles: ["cgroup"],
  description:
    "records what the cgroup backend would write; starts from the real values, writes nothing",
  create: (o) => createDryRunBackend(o),
});
registerActuatorBackend({
  name: RECORDING,
  handles: ["cgroup", "simulated"],
  description: "in-memory cgroup tree that records every write (tests, simulator)",
  create: (o) => new RecordingBackend({ now: o.now }),
});
