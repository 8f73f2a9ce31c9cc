// Contract of a workload policy: a pure step from observations to directives.
// weir's own policy and every benchmark baseline implement this one interface.
import type { Decision, Directive, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";
import type { PartitionTable, ThroughputColumns } from "./table.ts";

/** The control law's knobs (config `policy:`), all with defaults in config. */
export interface PolicyKnobs {
  /** Managed CPUs minus the reserve, in millicores. */
  capacityCpuMillis: CpuMillis;
  /** Extra above computed need: 0.2 = 20 % headroom. */
  headroomFraction: number;
  /** Multiplier when a constrained partition's real demand is unknown: 1.5 = +50 % a cycle. */
  probeFactor: number;
  /** No change smaller than this fraction of capacity (dead-band). */
  deadbandFraction: number;
  /** An allocation may shrink by at most this fraction of itself per cycle. */
  maxShrinkFractionPerCycle: number;
  /** EWMA weight of a new demand sample when demand rises (fast) / falls (slow). */
  smoothingUp: number;
  smoothingDown: number;
  /** EWMA weight of a new velocity sample. */
  velocitySmoothing: number;
  /** Throttled fraction above which a partition counts as constrained. */
  throttledThreshold: number;
  /**
   * CPU delay (runnable but waiting ÷ (waiting + running)) at or above which a partition counts
   * as constrained: the congestion of a closed-loop server, which neither drops nor is throttled.
   */
  cpuDelayThreshold: number;
  /**
   * A partition with a goal is steered to PI = 1 ÷ (1 + this), i.e. served = goal × (1 + this):
   * its entitlement moves by last × PI × (1 + this) a cycle (receiver up, donor down); 0.05 = 5 %.
   */
  goalHeadroomFraction: number;
  /**
   * 0 (the default): a goal is met on average — steered to goal × (1 + goalHeadroomFraction).
   * Else the share of cycles in which a goal partition must serve at least its goal (0.99 =
   * 99 %): its margin over the goal is learnt from its own readings (demand.ts
   * GOAL_MARGIN_GAIN) instead of the fixed goalHeadroomFraction, it donates only beyond it, and it
   * has no donor cap.
   */
  goalCycleFraction: number;
  /**
   * With goalCycleFraction 0: the share of cycles in which an open-loop goal partition — one
   * whose arrivals were dropped because it fell behind (confirmed drops) — must serve at least
   * its goal, as goalCycleFraction holds every goal partition to it (a learnt margin, no donor
   * cap); the others stay on average. 0 = every goal on average. Default 0.99
   * (demand.ts OPEN_LOOP_GOAL_CYCLE_SHARE).
   */
  openLoopGoalCycleFraction: number;
  /**
   * A goal partition that meets its goal with room while a less important partition wants CPU
   * is capped at what its goal needs, over CFS periods this long (donor-cap.ts); 0 = never.
   */
  donorCapPeriodMs: number;
  /**
   * A capped donor's cap is trimmed, closed-loop, so it serves goal × (1 + this) (donor-cap.ts
   * donorCapSetpoint); at goalHeadroomFraction or more there is no trim (the cap stays goal ÷
   * velocity × (1 + goalHeadroomFraction)). 0.01 = 1 %.
   */
  donorCapMarginFraction: number;
  /** A weight is rewritten only when it rises by this fraction of the last, or falls by 2.5× it (0.15: +15 % / −37.5 %; goal partitions a third of it both ways). */
  weightDeadbandFraction: number;
  /** Burst a cap comes with, as a fraction of the cap (the kernel allows at most 1: burst <= quota). */
  burstFraction: number;
  /**
   * Batch is capped at its entitlement after a network partition has been constrained this
   * many cycles in a row with weights alone (0 = never cap batch), and released after
   * `releaseBatchAfterCycles` calm cycles.
   */
  suppressBatchAfterCycles: number;
  releaseBatchAfterCycles: number;
  /**
   * Left-over capacity: "share" by weight among everyone below max (batch partitions and spare
   * for unconstrained network partitions alike: the spare keeps their latency low), "batch-first"
   * to those who can use it now (batch, constrained) before anyone holds it as spare, or "idle".
   */
  leftover: "share" | "batch-first" | "idle";
}

/** Per-partition memory of the policy between cycles (serialisable: it goes to the state file). */
export interface PartitionPolicyState {
  /** Last allocation the policy decided. */
  cpuMillis: CpuMillis;
  /** Smoothed demand (the allocation when none was measured yet: see `demandMeasured`). */
  demandCpuMillis: CpuMillis;
  /**
   * false = no demand measured yet (a partition never seen with data): the next step takes its
   * first demand unsmoothed, as it would from its own memory. Absent = measured (older files).
   */
  demandMeasured?: false;
  /** Smoothed velocity, packets per CPU-second (null until first estimate). */
  velocityPacketsPerCpuSec: number | null;
  /** Weight last directed (absent before the first, and in state files of older versions). */
  weight?: number;
  /** Last window's use was a load step, so a further rise now completes it (absent = no). */
  rising?: boolean;
  /**
   * Last window missed its goal while short of CPU (absent = no): a second such window in a row
   * makes the less important levels yield to it (weir.ts assessDemand, receivers first).
   */
  missedGoal?: boolean;
  /**
   * Its donor cap is in force (donor-cap.ts): the windows in a row it has not fitted, whether
   * its entitlement reached the cap, and its trimmed set point (absent = not capped).
   */
  donorCap?: {
    misfitWindows: number;
    reached?: boolean;
    /** The trimmed set point of its cap, millicores (donor-cap.ts donorCapSetpoint; absent = untrimmed). */
    setpointCpuMillis?: number;
  };
  /**
   * Goals met by cycles (PolicyKnobs.goalCycleFraction > 0): its margin over its goal, learnt
   * from its readings (demand.ts GOAL_MARGIN_GAIN); absent otherwise.
   */
  goalMarginFraction?: number;
}

export interface PolicyState {
  partitions: Record<PartitionId, PartitionPolicyState>;
  /**
   * Batch suppression: consecutive cycles with a constrained network partition (congested) and
   * without one (calm), and whether batch is capped now. Absent = never congested yet.
   */
  batch?: BatchSuppressionState;
}

export interface BatchSuppressionState {
  congestedCycles: number;
  calmCycles: number;
  active: boolean;
  /** Cycles batch has been capped this time (0 when not). */
  activeCycles?: number;
  /** Cycles left before batch may be capped again after a cap that did not help (0 = may). */
  cooldownCycles?: number;
}

export interface PolicyInput {
  nowMs: number;
  knobs: PolicyKnobs;
  specs: readonly PartitionSpec[];
  /** Latest throughput per partition; a missing entry means no data this cycle. */
  throughput: ReadonlyMap<PartitionId, Throughput>;
}

export interface PolicyOutput {
  directives: Directive[];
  decisions: Decision[];
  state: PolicyState;
}

export interface Policy {
  readonly name: string;
  initialState(): PolicyState;
  /** The object contract: specs and a throughput map in, directive and decision objects out. */
  step(input: PolicyInput, state: PolicyState): PolicyOutput;
  /**
   * The columnar contract (table.ts), where a policy has it: the same decisions as `step` on
   * the same partitions and windows, with no object per partition in or out. The manager
   * uses it when present (stepOnTable).
   */
  stepTable?(input: TableInput, state: PolicyState): TableOutput;
}

/** A step's input as columns: the partitions (built once per spec list) and this cycle's windows. */
export interface TableInput {
  nowMs: number;
  knobs: PolicyKnobs;
  table: PartitionTable;
  /** This cycle's windows, aligned with `table`; the output keeps them (fill a fresh one each cycle). */
  throughput: ThroughputColumns;
}

/** A step's output as columns aligned with its input's table; objects built on request. */
export interface TableOutput {
  directives: DirectiveTable;
  decisions: DecisionTable;
  state: PolicyState;
}

/** The directives of one step, one row per partition of its table. */
export interface DirectiveTable {
  readonly size: number;
  /** Entitlement per row, whole millicores (Directive.cpuMillis). */
  readonly cpuMillis: ArrayLike<number>;
  /** Weight per row (Directive.weight). */
  readonly weight: ArrayLike<number>;
  /** Row `i` as a Directive object, made on first request (null: the policy gave it none). */
  at(i: number): Directive | null;
}

/** The decisions of one step, one row per partition of its table. */
export interface DecisionTable {
  readonly size: number;
  /** Row `i` as a Decision (weir's: a view whose `why` is written when first read; null: none). */
  at(i: number): Decision | null;
  /** Whether `at(i)` is not null, making no object (absent: ask `at`). */
  has?(i: number): boolean;
  /** Row `i`'s `velocityPacketsPerCpuSec` (NaN: null), making no object (absent: ask `at`). */
  velocityAt?(i: number): number;
}
