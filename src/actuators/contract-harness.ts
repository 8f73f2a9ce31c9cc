// What a backend's harness gives the actuator contract suite (contract.ts): how to make,
// read back and remove a target, and what `ApplyResult.written` calls each value; and
// `cgroupHarness`, those names and read-backs for the cgroup file formats.
import type { CpuFileFormat } from "../cgroup/formats.ts";
import { appliedFromView } from "./engine.ts";
import type { ActuatorBackend, ActuatorTarget, AppliedAllocation } from "./types.ts";

export type MaybePromise<T> = T | Promise<T>;

export interface ContractTargetInit {
  /** Accounting period the fresh target should have, µs (only with `periods: true`). */
  periodUsec?: number;
}

/** What `ApplyResult.written` calls the value of each directive field. */
export interface WrittenNames {
  cap: string;
  weight: string;
  idle: string;
  burst: string;
}

export interface ActuatorContractOptions<T extends ActuatorTarget = ActuatorTarget> {
  /** Names the describe block. */
  name: string;
  makeBackend: () => ActuatorBackend;
  names: WrittenNames;
  /** Make a fresh target (unique per call): no cap, weight 100. */
  makeTarget: (label: string, init?: ContractTargetInit) => MaybePromise<T>;
  /** What the target holds now, read without the backend. */
  readBack: (target: T) => MaybePromise<AppliedAllocation>;
  /** Remove the target; called by tests and again at cleanup (must tolerate "already gone"). */
  removeTarget: (target: T) => MaybePromise<void>;
  /** The snapshot a fresh target gives, exactly (optional values only where the target has them). */
  freshSnapshot?: Readonly<Record<string, string>>;
  /** The target has its own accounting period (a CFS period) that caps are expressed in. */
  periods?: boolean;
  /**
   * Optional evidence beyond stats() that nothing was written: `arm` marks the target,
   * `touched` says whether anything was written since (e.g. mtime reset to 0, or a write log).
   */
  writeProbe?: {
    arm: (target: T) => MaybePromise<void>;
    touched: (target: T) => MaybePromise<boolean>;
  };
  /**
   * The target's cpuset, for backends declaring `cpuset` (the suite fails for one that declares
   * it without this): `make` gives the target a cpuset (a v1 cpuset cgroup at its path, or the
   * controller enabled on v2) holding at least 2 CPUs, `read` what its cpuset.cpus holds now.
   */
  cpuset?: {
    make: (target: T) => MaybePromise<void>;
    read: (target: T) => MaybePromise<string>;
  };
  /** Optional: make the target refuse writes (EACCES/EROFS) before it is opened. */
  makeUnwritable?: (target: T) => MaybePromise<void>;
}

/** A cgroup file format's names, fresh snapshot and read-back, for the harnesses of cgroup-kind backends. */
export function cgroupHarness(format: CpuFileFormat) {
  return {
    names: {
      cap: format.capFile,
      weight: format.weightFile,
      idle: format.idleFile,
      burst: format.burstFile,
    },
    freshSnapshot: format.freshValues,
    periods: true,
    /** What `values` (a cgroup's files) hold on the directive's scales. */
    view: (values: Readonly<Record<string, string>>): AppliedAllocation =>
      appliedFromView(format.describe(values)),
  } as const;
}
