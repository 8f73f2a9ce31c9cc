// Actuator backends by name, each with the target kinds it handles and what it can express.
// Nothing is found by trial: config picks a backend by name (`partitions[].actuator`). A new
// backend is one new file exporting a `BackendRegistration` plus one line in BACKENDS below;
// the contract suite (contract.ts) then runs over it with the cases its capabilities allow.
// `--dry-run` is not a backend but a way to open any of them (`dryRun`).

import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupRegistration } from "./cgroup.ts";
import { cgroupV1Registration } from "./cgroup-v1.ts";
import { cgroupV2Registration } from "./cgroup-v2.ts";
import { qemuRegistration } from "./qemu.ts";
import { recordingRegistration } from "./recording.ts";
import type {
  ActuatorBackend,
  ActuatorTarget,
  BackendContext,
  BackendRegistration,
  PartitionActuator,
} from "./types.ts";

/** Every registered backend, in order; the first is the default (`partitions[].actuator`). */
const BACKENDS: readonly BackendRegistration[] = [
  cgroupRegistration,
  cgroupV1Registration,
  cgroupV2Registration,
  recordingRegistration,
  qemuRegistration,
];

/** The backend a partition gets when its config names none. */
export const DEFAULT_ACTUATOR = "cgroup";

/** Every registered backend, in registration order. */
export function actuatorBackends(): readonly BackendRegistration[] {
  return BACKENDS;
}

/** The registered backends' names (config validates `partitions[].actuator` against them). */
export function actuatorBackendNames(): string[] {
  return BACKENDS.map((r) => r.name);
}

/** Build a backend by name; an unknown name is a config error that lists the known ones. */
export function createActuatorBackend(name: string, ctx: BackendContext): ActuatorBackend {
  const reg = BACKENDS.find((r) => r.name === name);
  if (!reg)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `actuator backend must be one of ${actuatorBackendNames().join(", ")}: current value is "${name}"`,
    );
  return reg.create(ctx);
}

/**
 * `--dry-run` over any backend: it opens targets with `openDryRun` (what they hold now, read
 * once), so the manager decides and reports exactly what would be written, and nothing is.
 */
export function dryRun(backend: ActuatorBackend): ActuatorBackend {
  return {
    name: `${backend.name} (dry run)`,
    handles: backend.handles,
    capabilities: backend.capabilities,
    open: (t: ActuatorTarget): PartitionActuator => backend.openDryRun(t),
    openDryRun: (t: ActuatorTarget): PartitionActuator => backend.openDryRun(t),
  };
}
