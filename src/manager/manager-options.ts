// What a Manager is made of and how it reports: the options the composition root
// (wiring.ts) fills in, the wiring of one partition's I/O ends, and the hooks' types.
import type { AllocationSnapshot, CpusetActuator, PartitionActuator } from "../actuators/types.ts";
import type {
  CounterSample,
  Decision,
  Directive,
  PartitionId,
  PartitionSpec,
  PartitionStatus,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import type { Policy, PolicyKnobs, PolicyState } from "../policy/types.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import type { HostCpuWiring } from "./host-cpu-sampler.ts";
import type { PlacementChange, PlacementOptions } from "./placement-step.ts";
import type { CapacityChange } from "./reach.ts";
import type { FoundCpuset, FoundValues } from "./state-file.ts";
import type { PlacementDecision } from "./view.ts";

/** Cumulative counters reported by a partition's agent, with when they arrived. */
export interface AgentReading {
  sample: CounterSample;
  receivedAtMs: number;
}

/** Where agent reports come from (shared-memory table or datagram channel). */
export interface AgentReports {
  latest(): ReadonlyMap<PartitionId, AgentReading>;
  /** Send the directive back to the partition's agent (the "kernel in the partition" variant). */
  sendDirective?(partition: PartitionId, directive: Directive): void;
}

/** How to (re)open the I/O ends of one partition; called at start and when retrying a gone one. */
export interface PartitionWiring {
  spec: PartitionSpec;
  source: "host" | "agent" | "both";
  /** Its host sensor; for `source: "agent"` one of its cgroup's CPU alone (withHostCongestion). */
  openSensor?: () => PartitionSensor;
  openActuator: () => PartitionActuator;
  /**
   * The CPUs the partition's work can reach now (its cpuset ∩ its threads' affinity), null
   * when unknown. When every partition has it, the policy's capacity is at most 1000m per CPU
   * of their union (reach.ts).
   */
  reachableCpus?: () => number[] | null;
  /**
   * Its cpuset, for placement (absent: its backend writes none; only with `placement`);
   * `found`: the value to restore, from the state file (a restart's).
   */
  openCpuset?: (found?: string) => CpusetActuator;
  /**
   * Where its values are found (its cgroup, normalised, and its `actuator`): the state file
   * keeps them with the values found, so a restart gives those to the partition on that cgroup.
   */
  foundAt?: { cgroup: string; actuator: string };
}

export type ThroughputFn = (
  partition: PartitionId,
  prev: CounterSample,
  next: CounterSample,
  source: Throughput["source"],
) => Throughput;

export type CrossCheckFn = (host: Throughput, agent: Throughput) => Throughput;

/** Where a partition's failure happened. */
export type FailurePhase = "open" | "sample" | "apply";

/** Cycles that may fail in a row (policy, reports or a hook threw) before the loop stops. */
export const DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES = 10;

export interface ManagerOptions {
  now: () => number;
  /** Clock for phase timings in records (default `now`; the simulator passes a real one). */
  timer?: () => number;
  intervalMs: number;
  policy: Policy;
  knobs: PolicyKnobs;
  partitions: PartitionWiring[];
  throughput: ThroughputFn;
  crossCheck?: CrossCheckFn;
  reports?: AgentReports;
  /** The host's CPU, sampled beside the partitions into `CycleRecord.host` (absent: no `host`). */
  hostCpu?: HostCpuWiring;
  /** Silence of a partition's sensor or agent after which it decays to its guarantee. */
  staleAfterMs?: number;
  /** How long a gone partition (or a lost sensor) waits before it is tried again. */
  retryGoneMs?: number;
  /**
   * Cycles that may fail in a row before `start` stops with CYCLE_CRASH_LOOP (default 10). A
   * failed cycle writes nothing more: the values last written stay in force.
   */
  maxConsecutiveCycleFailures?: number;
  /** Cycles between readings of the partitions' reachable CPUs (default 20). */
  reachRefreshCycles?: number;
  /** The capacity in force changed (the partitions' reachable CPUs, reach.ts). */
  onCapacityChange?: (change: CapacityChange) => void;
  /**
   * Place network partitions on CPUs (config `placement.mode` spread, or auto where it is in
   * force, wiring.ts `decidePlacement`; absent: nothing placed and no
   * cpuset opened).
   */
  placement?: PlacementOptions;
  /** Placement as configured and whether it is in force here (what the API shows). */
  placementDecision?: PlacementDecision;
  /** The placement changed (the log line). */
  onPlacementChange?: (change: PlacementChange) => void;
  /**
   * Cpusets were opened this cycle and are about to be written: the caller saves the state
   * file first, so that what they held is on disk before weir changes it.
   */
  onPlacementOpened?: () => void;
  /** A partition cannot be placed (no cpuset: once), or writing its cpuset failed (once until it succeeds). */
  onPlacementProblem?: (
    partition: PartitionId,
    error: WeirErrorInfo,
    kind: "unavailable" | "write",
  ) => void;
  /** Called for every failed cycle, with how many failed in a row (the log line, the metric). */
  onCycleError?: (error: WeirErrorInfo, consecutive: number) => void;
  /** Records kept for readers at most (default DEFAULT_HISTORY_SIZE; history.ts). */
  historySize?: number;
  /** Estimated bytes of records kept at most (default DEFAULT_HISTORY_MAX_BYTES; history.ts). */
  historyMaxBytes?: number;
  /** State from a previous run (state file). */
  resume?: {
    policyState?: PolicyState;
    found?: Record<PartitionId, AllocationSnapshot>;
    /** Values found in cgroups no partition is on now, not written back yet: saved again as they are. */
    foundUnmanaged?: FoundValues[];
    /** Placement: cpuset.cpus as found before the first write, per partition (on its cgroup now). */
    foundCpusets?: Record<PartitionId, string>;
    /** Cpusets found in cgroups no partition is on now, not written back yet: saved again as they are. */
    foundCpusetsUnmanaged?: Array<FoundCpuset & { partition: PartitionId }>;
  };
  redactedConfig?: () => unknown;
  /** Called for every partition whose allocation changed (the log line). */
  onChange?: (decision: Decision, directive: Directive) => void;
  onPartitionError?: (
    partition: PartitionId,
    error: WeirErrorInfo,
    status: PartitionStatus,
    phase: FailurePhase,
  ) => void;
}
