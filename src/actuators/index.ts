// Actuator backends by name, with the partition kinds each declares it handles, and the
// per-path choice between cgroup v1 and v2. Nothing is found by trial: a backend is picked
// by name from config, and "cgroup" looks at which files a path has.
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupDir } from "./cgroup-files.ts";
import { CGROUP_V1, CgroupV1Backend } from "./cgroup-v1.ts";
import { CGROUP_V2, CgroupV2Backend } from "./cgroup-v2.ts";
import type { FileSetActuator } from "./engine.ts";
import type { CpuFileFormat } from "./formats.ts";
import { RECORDING, RecordingBackend } from "./recording.ts";
import type { ActuatorBackend, ActuatorTarget } from "./types.ts";

export type CgroupLayout = typeof CGROUP_V1 | typeof CGROUP_V2;

/**
 * Which layout manages `cgroup` under `cgroupfs`: v2 when `<cgroupfs>/<cgroup>/cpu.max`
 * exists, v1 when `<cgroupfs>/<v1Controller>/<cgroup>/cpu.cfs_quota_us` does. Throws
 * CGROUP_NOT_WRITABLE for a v2 cgroup without the cpu controller, CGROUP_GONE when neither exists.
 * (Local to actuators: src/sensors had no detectCgroupLayout when this was written.)
 */
export function detect(cgroupfs: string, cgroup: string, v1Controller = "cpu"): CgroupLayout {
  const v2dir = cgroupDir(cgroupfs, cgroup);
  if (fs.existsSync(path.join(v2dir, "cpu.max"))) return CGROUP_V2;
  const v1dir = cgroupDir(cgroupDir(cgroupfs, v1Controller), cgroup);
  if (fs.existsSync(path.join(v1dir, "cpu.cfs_quota_us"))) return CGROUP_V1;
  if (fs.existsSync(path.join(v2dir, "cgroup.controllers")))
    throw new WeirError(
      ErrorCodes.CGROUP_NOT_WRITABLE,
      `cgroup v2 ${v2dir} has no cpu.max: enable the cpu controller in its parent's cgroup.subtree_control`,
    );
  throw new WeirError(
    ErrorCodes.CGROUP_GONE,
    `cgroup "${cgroup}" not found: neither ${v2dir}/cpu.max (v2) nor ${v1dir}/cpu.cfs_quota_us (v1) exists`,
  );
}

export interface BackendOptions {
  /** Where cgroups are mounted; usually "/sys/fs/cgroup". */
  cgroupfs: string;
  /** The v1 cpu hierarchy under cgroupfs (default "cpu"). */
  v1Controller?: string;
  /** Clock for records (recording backends). */
  now?: () => number;
}

/** cgroup v1 or v2, chosen per target path when it is opened. */
export class CgroupBackend implements ActuatorBackend {
  readonly name = "cgroup";
  readonly handles = ["cgroup"] as const;
  private readonly v1: CgroupV1Backend;
  private readonly v2: CgroupV2Backend;
  private readonly o: BackendOptions;

  constructor(o: BackendOptions) {
    this.o = o;
    this.v1 = new CgroupV1Backend({ cgroupfs: o.cgroupfs, controller: o.v1Controller });
    this.v2 = new CgroupV2Backend({ cgroupfs: o.cgroupfs });
  }

  /** The backend that manages this path (throws like detect()). */
  backendFor(cgroup: string): CgroupV1Backend | CgroupV2Backend {
    return detect(this.o.cgroupfs, cgroup, this.o.v1Controller) === CGROUP_V2 ? this.v2 : this.v1;
  }

  open(target: ActuatorTarget): FileSetActuator {
    return this.backendFor(target.cgroup).open(target);
  }
}

/**
 * `--dry-run`: a recording backend whose cgroups start as the real ones are (read once,
 * read-only, layout detected per path). It writes nothing to the host and records what
 * the cgroup backend would have written.
 */
export function createDryRunBackend(o: BackendOptions): RecordingBackend {
  const real = new CgroupBackend(o);
  return new RecordingBackend({
    name: "dry-run",
    now: o.now,
    format: (t): CpuFileFormat => real.backendFor(t.cgroup).format,
    seed: (t) => real.backendFor(t.cgroup).read(t.cgroup),
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
  description: "cgroup v1 or v2, detected per partition path",
  create: (o) => new CgroupBackend(o),
});
registerActuatorBackend({
  name: CGROUP_V1,
  handles: ["cgroup"],
  description: "cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us and cpu.shares",
  create: (o) => new CgroupV1Backend({ cgroupfs: o.cgroupfs, controller: o.v1Controller }),
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
