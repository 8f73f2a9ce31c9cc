// weir's workload policy: the control law of the top-level README.md ("How weir decides") as one
// pure step.
//   velocity → demand (confirmed by congestion, smoothed, goal floor) → allocation (mins,
//   held, tiers, left-over) → post-processors (dead-band, shrink limit, bounds, whole millis)
//   → directives + decisions + state.
// No I/O, no clock (time comes in as input.nowMs), no node:* imports. See README.md.
//
// Speed (10,000 partitions in ≤ 1 ms is the budget): the step's contract is columnar
// (table.ts): partitions and windows come in as typed arrays, directives and decisions go out
// as arrays with their objects made only when someone asks for a row. One arena per step
// holds what the output keeps; scratch reused between steps holds what it does not; last
// cycle's arrays are read where they are. Reusing scratch is invisible from outside: the step
// reads only its arguments and returns the same output for the same input.
// Over 400 lines on purpose: the step is a few passes over a dozen aligned typed arrays
// (assess, allocate, post-process, express), one function each so each is optimised on its
// own; splitting them into files would pass those arrays between files. What is not a pass
// lives beside it: express.ts (directives), state.ts (the packed state), batch.ts (batch
// suppression), decision.ts (the lazy why), table.ts (the columns).
import {
  type AllocationProblem,
  type AllocationScratch,
  allocate,
  createAllocationScratch,
  Mode,
} from "./allocate.ts";
import { nextBatchSuppression } from "./batch.ts";
import { packBits, StepDecisions, type StepReasons } from "./decision.ts";
import {
  assessDemandRows,
  DemandBit,
  type DemandColumns,
  type DemandInputs,
  DemandKindCode,
  type NetworkRowPass,
  performanceIndexOrNaN,
} from "./demand.ts";
import { donorCaps, markDonorCapsReached, wantsCpuFrom } from "./donor-cap.ts";
import {
  CapCode,
  capCodeFor,
  StepDirectives,
  type WeightBand,
  weightAt,
  weightBands,
  weightFloorsByImportance,
  weightFrame,
} from "./express.ts";
import { fixedShapeKnobs } from "./knobs.ts";
import {
  type AllocationFrame,
  defaultPostProcessors,
  type PostProcessor,
  runPostProcessors,
} from "./postprocess.ts";
import {
  anyGoalMargin,
  clamp,
  demandTarget,
  importanceWeightRatioFor,
  minProbeStep,
  protectedNeed,
  Source,
  yieldingDemand,
} from "./rules.ts";
import { FLAG_MISSED_GOAL, FLAG_RISING, type Previous, packedState, previousOf } from "./state.ts";
import {
  divisorsFor,
  type PartitionTable,
  partitionTable,
  type ThroughputColumns,
  throughputColumnsOf,
} from "./table.ts";
import type { Policy, PolicyKnobs, PolicyState, TableInput, TableOutput } from "./types.ts";

/**
 * The dead-band never exceeds 50m: 1 % of a 100-CPU host is 1,000m, more than most partitions'
 * whole change, which froze every allocation at its first value in the scale benchmarks.
 */
export const DEADBAND_MAX_CPU_MILLIS = 50;

/** Capacity the step hands out: whole millicores, never negative. */
const usableCapacity = (capacityCpuMillis: number): number =>
  Math.max(0, Math.floor(capacityCpuMillis));

/**
 * The dead-band the step applies, in millicores: deadbandFraction of the capacity, at most
 * DEADBAND_MAX_CPU_MILLIS. 0.01 of 2,000m → 20m; 0.01 of 100,000m → 50m (not 1,000m).
 */
export function deadbandCpuMillis(
  knobs: Pick<PolicyKnobs, "deadbandFraction" | "capacityCpuMillis">,
): number {
  return Math.min(
    knobs.deadbandFraction * usableCapacity(knobs.capacityCpuMillis),
    DEADBAND_MAX_CPU_MILLIS,
  );
}

/**
 * The step's passes in the order it runs them, as its pass marker names them (each name is
 * marked when that pass ends; `demandAgain` only when the demand pass runs a second time).
 */
export const STEP_PASSES = [
  "arena",
  "rule",
  "demand",
  "demandAgain",
  "donorCap",
  "allocate",
  "post",
  "express",
] as const;
export type StepPass = (typeof STEP_PASSES)[number];

/**
 * Called at the end of each pass of every step, for bench/step-passes.ts's time per pass; null
 * (no call) unless a benchmark sets it. It takes no part in the step's arithmetic.
 */
let passMarker: ((pass: StepPass) => void) | null = null;
export function setStepPassMarker(marker: ((pass: StepPass) => void) | null): void {
  passMarker = marker;
}

/** A read-only array of `n` zeros, shared by the steps' decisions (none of them writes to it). */
let zeroRow = new Float64Array(0);
function zeros(n: number): Float64Array {
  if (zeroRow.length !== n) zeroRow = new Float64Array(n);
  return zeroRow;
}

/** Buffers a step needs only while it runs; grown to the largest partition count seen. */
class Scratch {
  size = -1;
  f64: Float64Array[] = [];
  u8: Uint8Array[] = [];
  alloc: AllocationScratch = createAllocationScratch(1);
  /**
   * Last step's level yielded to (6 = none): the demand pass's guess at this step's (see
   * assessDemand). A wrong guess costs a second demand pass, never a different output.
   */
  yieldGuess = 6;
  /** The rows the donor cap may apply to (donor-cap.ts donorCaps' `rows`). */
  dcRows = new Int32Array(1);
  /** The rows the demand rule skips (NetworkRowPass.skipped). */
  skipped = new Int32Array(1);
  /** rowsByClass of `classTable` (kept while the step gets the same table). */
  classTable: PartitionTable | null = null;
  classOrder: Int32Array = new Int32Array(1);

  /** The table's rows by class (rowsByClass), made once per table: a table is read-only once built. */
  rowsByClass(t: PartitionTable): Int32Array {
    if (this.classTable !== t) {
      this.classOrder = rowsByClass(t);
      this.classTable = t;
    }
    return this.classOrder;
  }

  /** `f` Float64Arrays and `u` Uint8Arrays of length n (views into reused buffers). */
  fit(n: number, f: number, u: number): { f64: Float64Array[]; u8: Uint8Array[] } {
    if (n > this.size || this.f64.length !== f || this.u8.length !== u) {
      this.f64 = Array.from({ length: f }, () => new Float64Array(n));
      this.u8 = Array.from({ length: u }, () => new Uint8Array(n));
      this.alloc = createAllocationScratch(n);
      this.dcRows = new Int32Array(Math.max(1, n));
      this.skipped = new Int32Array(Math.max(1, n));
      this.size = n;
    }
    return {
      f64: this.f64.map((x) => (x.length === n ? x : x.subarray(0, n))),
      u8: this.u8.map((x) => (x.length === n ? x : x.subarray(0, n))),
    };
  }
}

export interface WeirPolicyOptions {
  /** Post-processors applied after the core step (default: dead-band, shrink limit, bounds, whole millis). */
  postProcessors?: readonly PostProcessor[];
  /**
   * The light-partition weight floor (express.ts weightFloorsByImportance), default on. Off,
   * every weight is in proportion to its entitlement alone: the benchmarks' comparison row
   * (conservation-real; docs/control-law.md says what it measured).
   */
  weightFloor?: boolean;
  /**
   * The demand pass in a loop of its own after the rule, as before the rule made it on its rows
   * (NetworkRowPass): the same output (step-differential.test.ts checks it), for that check.
   */
  separateDemandPass?: boolean;
}

export function createWeirPolicy(opts: WeirPolicyOptions = {}): Policy {
  const postProcessors = opts.postProcessors ?? defaultPostProcessors;
  const weightFloor = opts.weightFloor ?? true;
  const fuseDemandPass = !(opts.separateDemandPass ?? false);
  const scratch = new Scratch();
  const stepTable = (input: TableInput, state: PolicyState): WeirTableOutput =>
    step(input, state, postProcessors, scratch, weightFloor, fuseDemandPass);
  return {
    name: "weir",
    initialState: (): PolicyState => ({ partitions: {} }),
    stepTable,
    // The object contract is a view of the columnar one: the specs' table and the map's
    // columns in, every directive and decision object made out.
    step: (input, state) => {
      const table = partitionTable(input.specs);
      const out = stepTable(
        {
          nowMs: input.nowMs,
          knobs: input.knobs,
          table,
          throughput: throughputColumnsOf(table, input.throughput),
        },
        state,
      );
      return {
        directives: Array.from({ length: table.size }, (_, i) => out.directives.at(i)),
        decisions: Array.from({ length: table.size }, (_, i) => out.decisions.at(i)),
        state: out.state,
      };
    },
  };
}

/**
 * Rows per block of rowsByClass: the passes visit a block's rows by class before the next
 * block's, so each column is read from a few places near each other, not from seven runs
 * spread over the whole table (at 100,000 rows, the whole-table order made the step slower).
 */
export const CLASS_BLOCK_ROWS = 4096;

/**
 * The order in which the demand rule, the pass that reads it and the weights' walk visit the
 * rows: block by block (CLASS_BLOCK_ROWS), a block's batch rows, then its other rows without a
 * goal by importance, then its other rows with a goal, each in row order. Those passes write
 * only their own row's values and find only a minimum, a maximum or an or across rows, so the
 * order changes no output, but their jumps on a row's kind (batch or not, a goal or not, more
 * important than the level yielded to or not) go the same way for long runs instead of
 * flipping from row to row with the spec list. The rows with a goal stay in row order (last in
 * their block, and the blocks in row order): the donor cap's rows, which assessDemand lists,
 * must be in row order. The passes that sum across rows (the allocation, post-processing) keep
 * row order.
 */
export function rowsByClass(t: PartitionTable, blockRows = CLASS_BLOCK_ROWS): Int32Array {
  const n = t.size;
  const { batch, goalPacketsPerSec: goals, importance } = t;
  // 0: batch; 1..5: no goal, by importance; 6: a goal
  const classOf = (i: number): number => (batch[i] === 1 ? 0 : goals[i]! > 0 ? 6 : importance[i]!);
  const order = new Int32Array(Math.max(1, n));
  const start = new Int32Array(8);
  for (let from = 0; from < n; from += blockRows) {
    const to = Math.min(n, from + blockRows);
    start.fill(0);
    start[0] = from;
    for (let i = from; i < to; i++) start[classOf(i) + 1]!++;
    for (let c = 0; c < 7; c++) start[c + 1]! += start[c]!;
    for (let i = from; i < to; i++) order[start[classOf(i)]!++] = i;
  }
  return order;
}

/** The goal-margin column of a step without goals by cycles: empty (read as none, never written). */
/** An input column the rule is told not to read. */
const NOT_READ = new Float64Array(0);

/** weir's columnar output: every row has a directive and a decision. */
interface WeirTableOutput extends TableOutput {
  directives: StepDirectives;
  decisions: StepDecisions;
}

/** weir's control law with the default post-processors. */
export const weirPolicy: Policy = createWeirPolicy();

/**
 * One step's arrays and the numbers its passes share. The step is a few short functions, one
 * loop each, over this (one large function with every loop in it was optimised in the middle
 * of its first loop and thrown back to the interpreter at each part that had not run yet).
 */
interface StepArrays {
  knobs: PolicyKnobs;
  /** Each importance level's weight ÷ the one below's in this step's weights (importanceWeightRatioFor). */
  ratio: number;
  t: PartitionTable;
  cols: ThroughputColumns;
  capacity: number;
  probeStep: number;
  /** Kept by the output (state, decisions, directives). */
  final: Float64Array;
  demand: Float64Array;
  velocity: Float64Array;
  ideal: Float64Array;
  weights: Float64Array;
  /** Scratch (the decisions keep a copy of these only when they are not all lo / 0). */
  leftover: Float64Array;
  effectiveMin: Float64Array;
  /** 1 where the PI is above 1 (a receiver at the receivers' level); the PI is computed again when read. */
  overGoal: Uint8Array;
  /** A capped donor's trimmed set point (donor-cap.ts donorCapSetpoint); NaN elsewhere. */
  donorSetpoint: Float64Array;
  bits: Uint8Array;
  flags: Uint8Array;
  capCode: Uint8Array;
  /** Last cycle's (read-only). */
  prev: Previous;
  /** Scratch. */
  target: Float64Array;
  prevNeed: Float64Array;
  useNeed: Float64Array;
  mode: Uint8Array;
  eligible: Uint8Array;
  marks: Uint8Array;
  /** The light-partition floors by importance (weightFloorsByImportance; all 0 with the floor off). */
  weightFloorAt: Float64Array;
  /**
   * Donor cap (donor-cap.ts): rows it may apply to, this window's donor and missesGoal (all
   * three written only on the rows of dcRows, by donorCapInputs), and who is capped.
   */
  dcEligible: Uint8Array;
  dcDonor: Uint8Array;
  dcMisses: Uint8Array;
  dcCapped: Uint8Array;
  /** The rows with dcEligible 1, in row order (the first `dcCount` of DemandSummary). */
  dcRows: Int32Array;
  /** The demand rule's inputs besides the window, and its output (demand.ts assessDemandRows). */
  ruleInputs: DemandInputs;
  rule: DemandColumns;
}

/** What the demand pass found across partitions. */
interface DemandSummary {
  receiverImportance: number;
  /** Most important level where a goal is missed while short of CPU (DemandAssessment.missesGoal). */
  yieldTo: number;
  congested: boolean;
  anyBatch: boolean;
  /** Largest importance number among network partitions that want CPU (donor-cap.ts wantsCpu); 0 = none. */
  leastImportantWanting: number;
  /** How many rows StepArrays.dcRows holds. */
  dcCount: number;
}

function step(
  input: TableInput,
  state: PolicyState,
  postProcessors: readonly PostProcessor[],
  sc: Scratch,
  useWeightFloor: boolean,
  fuseDemandPass: boolean,
): WeirTableOutput {
  const t = input.table;
  const knobs = fixedShapeKnobs(input.knobs);
  const cols = input.throughput;
  const n = t.size;
  if (cols.size !== n)
    throw new RangeError(`throughput columns have ${cols.size} rows for a table of ${n}`);
  const capacity = usableCapacity(knobs.capacityCpuMillis);
  const deadband = deadbandCpuMillis(knobs);
  const shareLeftover = knobs.leftover !== "idle";
  const canUseFirst = knobs.leftover === "batch-first";

  // What the output keeps (the next state's arrays, the decisions' numbers and reasons), in
  // one buffer of each type; everything else is scratch. Last cycle's arrays are read where
  // they are (the previous state's, when it is aligned with this table), never copied.
  // Goal margins by cycles (goalCycleFraction > 0: every goal row; otherwise the open-loop
  // ones, demand.ts OPEN_LOOP_GOAL_CYCLE_SHARE) have a column; 0 = none.
  const byCycles = knobs.goalCycleFraction > 0;
  const f64s = 7;
  const arena = new ArrayBuffer(n * (f64s * 8 + 3)); // Float64 arrays first: aligned
  const f = (k: number): Float64Array => new Float64Array(arena, k * n * 8, n);
  const u = (k: number): Uint8Array => new Uint8Array(arena, f64s * n * 8 + k * n, n);
  const goalMargin = f(6);
  const buf = sc.fit(n, 7, 10);
  const [target, prevNeed, post0, post1, effectiveMin, leftover, ruleDemand] = buf.f64 as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const [
    mode,
    eligible,
    marks,
    dcEligible,
    dcDonor,
    dcMisses,
    dcCapped,
    overGoal,
    ruleKind,
    ruleBits,
  ] = buf.u8 as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  dcEligible.fill(0);
  const velocity = f(2);
  const prev = previousOf(state, t);
  dcCapped.fill(0);
  // last step's weights were written with the ratio its margins (now the state's) called for
  const prevRatio = importanceWeightRatioFor(knobs, anyGoalMargin(prev.goalMargin));
  const s: StepArrays = {
    knobs,
    ratio: prevRatio, // until the rule has this window's margins
    t,
    cols,
    capacity,
    probeStep: minProbeStep(deadband),
    final: f(0),
    demand: f(1),
    velocity,
    ideal: f(3),
    leftover,
    effectiveMin,
    weights: f(4),
    overGoal,
    donorSetpoint: f(5).fill(Number.NaN),
    bits: u(0),
    flags: u(1),
    capCode: u(2),
    prev,
    target,
    prevNeed,
    useNeed: post0, // free until the post-processors run
    mode,
    eligible,
    marks,
    dcEligible,
    dcDonor,
    dcMisses,
    dcCapped,
    dcRows: sc.dcRows,
    weightFloorAt: new Float64Array(6),
    ruleInputs: {
      velocity,
      prevCpuMillis: prev.cpuMillis,
      prevDemandCpuMillis: prev.demand,
      goalPacketsPerSec: t.goalPacketsPerSec,
      goalBaseCpuMillis: NOT_READ, // the rule computes each goal row's (fromPrevious)
      prevFlags: prev.flags,
      prevGoalMargin: prev.goalMargin,
      minProbeStepCpuMillis: minProbeStep(deadband),
      batch: t.batch, // the rule's columns are read only on network rows with a window
      fromPrevious: {
        prevVelocity: prev.velocity,
        prevWeight: prev.weight,
        importance: t.importance,
        weightDivisors: divisorsFor(t, prevRatio), // goalBase: last step's weights
        capacityCpuMillis: capacity,
        velocitySmoothing: knobs.velocitySmoothing,
      },
    },
    rule: {
      kind: ruleKind,
      bits: ruleBits,
      useNeedCpuMillis: post0, // = useNeed
      demandCpuMillis: ruleDemand,
      goalMargin,
      heldPerCycle: 0,
      detail: null, // what only the why shows is computed again when it is read
    },
  };
  // The demand rule over every row in a loop of its own (demand.ts assessDemandRows), then the
  // pass that turns its columns into the allocation's inputs.
  // The rule, the pass that reads it and the weights' walk visit the rows by class (rowsByClass).
  const mark = passMarker;
  const order = sc.rowsByClass(t);
  if (mark !== null) mark("arena");
  // Receivers first needs the level yielded to, which only the whole pass finds: the pass
  // applies last step's, and runs again with this step's when that was not it.
  let found: DemandSummary;
  if (fuseDemandPass && !byCycles) {
    // The rule assesses only the network rows with a window (DemandInputs.batch), and makes the
    // demand pass's numbers for them in the same loop (NetworkRowPass); the pass then visits
    // only the rows the rule skipped.
    const pass: NetworkRowPass = {
      yieldTo: sc.yieldGuess,
      lo: t.minCpuMillis,
      hi: t.maxCpuMillis,
      demandMode: Mode.demand,
      hadPreviousBit: packBits(0, 0, false, true, false),
      yieldsBit: packBits(0, 0, false, false, true),
      mode,
      target,
      eligible,
      demand: s.demand,
      prevNeed,
      flags: s.flags,
      rowBits: s.bits,
      overGoal,
      dcRows: s.dcRows,
      skipped: sc.skipped,
      missedAt: 6,
      congested: 0,
      leastImportantWanting: 0,
      receiverImportance: 6,
      dcCount: 0,
      skippedCount: 0,
    };
    assessDemandRows(cols, n, s.ruleInputs, knobs, s.rule, order, pass);
    if (mark !== null) mark("rule");
    const rest = assessDemand(s, sc.yieldGuess, pass.skipped, pass.skippedCount);
    found = {
      receiverImportance: Math.min(rest.receiverImportance, pass.receiverImportance),
      yieldTo: Math.min(rest.yieldTo, pass.missedAt),
      congested: rest.congested || pass.congested === 1,
      anyBatch: rest.anyBatch,
      leastImportantWanting: Math.max(rest.leastImportantWanting, pass.leastImportantWanting),
      dcCount: pass.dcCount,
    };
  } else {
    assessDemandRows(cols, n, s.ruleInputs, knobs, s.rule, order);
    if (mark !== null) mark("rule");
    found = assessDemand(s, sc.yieldGuess, order, n);
  }
  if (mark !== null) mark("demand");
  // this step's weights: with this window's margins (a partition marked open loop now counts)
  s.ratio = importanceWeightRatioFor(knobs, s.rule.heldPerCycle > 0);
  if (found.yieldTo !== sc.yieldGuess) {
    found = assessDemand(s, found.yieldTo, order, n);
    if (mark !== null) mark("demandAgain");
  }
  sc.yieldGuess = found.yieldTo;
  const donorCapped =
    found.leastImportantWanting > 1 &&
    donorCapInputs(s, found.dcCount, dcEligible, dcDonor, dcMisses) &&
    donorCaps(
      n,
      {
        eligible: dcEligible,
        donor: dcDonor,
        missesGoal: dcMisses,
        useNeed: s.useNeed,
        goal: t.goalPacketsPerSec,
        velocity: s.velocity,
        importance: t.importance,
        min: t.minCpuMillis,
        max: t.maxCpuMillis,
        windowMs: cols.windowMs,
        served: cols.servedPacketsPerSec,
        prevCpu: s.prev.cpuMillis,
        prevFlags: s.prev.flags,
        prevSetpoint: s.prev.donorSetpoint,
        rows: s.dcRows,
        rowCount: found.dcCount,
        goalMargin,
      },
      found.leastImportantWanting,
      knobs,
      {
        demand: s.demand,
        target,
        leftoverEligible: eligible,
        prevNeed,
        flags: s.flags,
        capped: dcCapped,
        setpoint: s.donorSetpoint,
      },
    ) > 0;
  if (mark !== null) mark("donorCap");

  const problem: AllocationProblem = {
    capacityCpuMillis: capacity,
    lo: t.minCpuMillis,
    hi: t.maxCpuMillis,
    weight: t.weight,
    importance: t.importance,
    mode,
    target,
    leftoverEligible: eligible,
    shareLeftover,
    canUseFirst,
  };
  const allocated = allocate(
    problem,
    { alloc: s.ideal, effectiveMin: s.effectiveMin, leftover: s.leftover },
    sc.alloc,
  );
  if (mark !== null) mark("allocate");
  const frame: AllocationFrame = {
    capacityCpuMillis: capacity,
    deadbandCpuMillis: deadband,
    maxShrinkFraction: knobs.maxShrinkFractionPerCycle,
    lo: s.effectiveMin,
    hi: t.maxCpuMillis,
    prev: s.prev.cpuMillis,
    prevNeed,
    ideal: s.ideal,
    importance: t.importance,
  };
  runPostProcessors(frame, postProcessors, s.final, marks, [post0, post1]);
  if (donorCapped)
    markDonorCapsReached(n, dcCapped, target, s.final, deadband, s.flags, s.dcRows, found.dcCount);
  if (mark !== null) mark("post");
  const batch = found.anyBatch
    ? nextBatchSuppression(
        state.batch,
        found.congested,
        knobs.suppressBatchAfterCycles,
        knobs.releaseBatchAfterCycles,
      )
    : undefined;
  const suppressBatch = batch?.active ?? false;
  expressAll(
    s,
    weightBands(knobs, capacity, deadband),
    suppressBatch,
    found.receiverImportance,
    useWeightFloor,
    order,
  );
  if (mark !== null) mark("express");

  const reasons: StepReasons = {
    context: {
      knobs,
      capacityCpuMillis: capacity,
      deadbandCpuMillis: frame.deadbandCpuMillis,
      importanceWeightRatio: s.ratio,
      prevImportanceWeightRatio: prevRatio,
    },
    table: t,
    throughput: cols,
    prevDemand: s.prev.demand,
    ideal: s.ideal,
    // the decisions keep these only where they say something: else the table's mins (every
    // guarantee honoured: allocate copies them) and no left-over
    leftover: allocated.leftoverShared ? s.leftover.slice() : zeros(n),
    effectiveMin: allocated.guaranteesCut ? s.effectiveMin.slice() : t.minCpuMillis,
    bits: s.bits,
    capCode: s.capCode,
    batchSuppressed: suppressBatch,
    prevWeight: s.prev.weight,
    prevFlags: s.prev.flags,
    prevGoalMargin: s.prev.goalMargin,
    yieldTo: found.yieldTo,
    weights: s.weights,
    weightFloorAt: useWeightFloor ? s.weightFloorAt : null,
    demand: s.demand,
    previous: s.prev.cpuMillis,
    cpuMillis: s.final,
    velocity: s.velocity,
    donorSetpoint: s.donorSetpoint,
    goalMargin,
  };
  return {
    directives: new StepDirectives(
      t,
      s.final,
      s.weights,
      s.capCode,
      capacity,
      knobs.burstFraction,
      knobs.donorCapPeriodMs * 1000,
    ),
    decisions: new StepDecisions(reasons),
    state: packedState(
      {
        ids: t.ids,
        cpuMillis: s.final,
        demand: s.demand,
        velocity: s.velocity,
        weight: s.weights,
        flags: s.flags,
        donorSetpoint: s.donorSetpoint,
        goalMargin,
      },
      batch,
    ),
  };
}

/**
 * The demand rule's columns (s.rule, every row assessed) turned into the tier phase's target,
 * last cycle's protected need and the rest, per partition, with receivers first applied for the
 * level `yieldTo` (6: none).
 *
 * Receivers first (z/OS WLM): while a goal partition at importance `yieldTo` misses its goal
 * and is short of CPU (DemandAssessment.missesGoal) in this window and the last, the spare goes
 * only to the goal receivers at that level, and a partition without a goal at a less important
 * level yields: it claims at most its use + headroom (rules.ts yieldingDemand: no congestion
 * probe, no traffic claim) and no spare. Under weights it still runs on any CPU the receivers
 * leave idle; under contention its weight no longer grows against theirs. Real testbed,
 * goals-tiers-real (importance 1 and 2 with goals, 3 without, one CPU, capacity 1.7):
 * importance 3 (waiting for CPU 70–85 %) was entitled to 380–940m beside an importance-2
 * receiver entitled to 340–770m (a per-cycle trace), and took 15 % of what importance 1 left
 * (b ÷ (b + c) 84.8 %, 5 repetitions).
 * The pass writes each row's decision bits that it knows (source, had a previous allocation,
 * yields: decision.ts packBits); expressAll adds the marks and the receiver. The level is the most important such miss, which only the whole pass finds
 * (DemandSummary.yieldTo): the step passes last step's level and runs the pass again when this
 * step's differs. The pass writes every number it owns in each row (no row keeps anything from
 * the first run), so the second run's output is the one a single pass with the right level
 * would make. The rule does not depend on the level: it runs once.
 * The step's first run is split: the rule makes the network rows' part in its own loop
 * (demand.ts NetworkRowPass) and this pass visits only the rows the rule skipped (`order`'s
 * first `n`: the skipped list); a second run visits every row here.
 */
function assessDemand(s: StepArrays, yieldTo: number, order: Int32Array, n: number): DemandSummary {
  const { knobs, t, cols, demand, velocity, overGoal, flags, target } = s;
  const { prevNeed, useNeed, mode, eligible } = s;
  const rowBits = s.bits;
  const prevCpu = s.prev.cpuMillis;
  const prevDemand = s.prev.demand;
  const prevFlags = s.prev.flags;
  const lo = t.minCpuMillis;
  const hi = t.maxCpuMillis;
  const importance = t.importance;
  const batch = t.batch;
  const goals = t.goalPacketsPerSec;
  const has = cols.has;
  const served = cols.servedPacketsPerSec;
  const kinds = s.rule.kind;
  const ruleBits = s.rule.bits;
  const ruleDemand = s.rule.demandCpuMillis;
  let receiverImportance = 6;
  let missedAt = 6;
  let congested = 0;
  let anyBatch = false;
  let leastImportantWanting = 0;
  const { dcRows } = s;
  let dcCount = 0;
  const delays = cols.cpuDelayFraction;
  const delayThreshold = knobs.cpuDelayThreshold;
  const yielding = +(yieldTo <= 5);
  // constants as locals: an imported one is read through a cell, with a check, at each use
  const risingFlag = FLAG_RISING;
  const missedFlag = FLAG_MISSED_GOAL;
  const IDLE = DemandKindCode.idle;
  const THROTTLED = DemandBit.throttled;
  const DROPPING = DemandBit.dropping;
  const DELAYED = DemandBit.delayed;
  const DONOR = DemandBit.donor;
  const RECEIVER = DemandBit.receiver;
  const MISSES = DemandBit.missesGoal;
  const RISING = DemandBit.rising;
  const NETWORK = Source.network;
  const BATCH = Source.batch;
  const HELD = Source.held;
  const UNSEEN = Source.unseen;
  const DEMAND_MODE = Mode.demand;
  const BATCH_MODE = Mode.batch;
  const HELD_MODE = Mode.held;

  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const min = lo[i]!;
    const max = hi[i]!;
    const imp = importance[i]!;
    const g = goals[i]!;
    const pc = prevCpu[i]!;
    const pd = prevDemand[i]!;
    const hasPrev = !Number.isNaN(pc);
    const hasData = has[i] === 1;
    let src: number;
    let yieldsRow = 0;
    if (batch[i] === 1) {
      anyBatch = true;
      src = BATCH;
      mode[i] = BATCH_MODE;
      target[i] = min;
      eligible[i] = 2; // can always use more: served first from the left-over
      demand[i] = max;
      prevNeed[i] = protectedNeed(BATCH, pc, pd, min, max);
    } else if (hasData) {
      src = NETWORK;
      // A row's flags, spare and donor-cap inputs as 0/1 arithmetic, not jumps that random
      // rows mispredict (the arena's flags start at 0).
      const kind = kinds[i]!;
      const bits = ruleBits[i]!;
      const misses = +((bits & MISSES) !== 0);
      const missedBefore = +((prevFlags[i]! & missedFlag) === missedFlag);
      flags[i] = (+((bits & RISING) !== 0) * risingFlag) | (misses * missedFlag);
      const noGoal = +!(g > 0); // rules.ts hasGoal
      const use = useNeed[i]!; // the rule wrote it there
      // The levels below yield only to a miss that lasts two windows in a row: one 100 ms
      // reading of a server held at its goal + 5 % is above GOAL_MISS_YIELD_PI now and then,
      // and each such window cost the level below its share.
      const missing = misses & missedBefore;
      if (missing === 1 && imp < missedAt) missedAt = imp;
      congested |= +((bits & (DELAYED | DROPPING)) !== 0) & +(kind !== IDLE);
      if (
        imp > leastImportantWanting &&
        wantsCpuFrom(
          kind === IDLE,
          (bits & THROTTLED) !== 0,
          (bits & DROPPING) !== 0,
          delays[i]!,
          delayThreshold,
        )
      )
        leastImportantWanting = imp;
      // a goal row with a velocity: the donor cap's rows (donorCapInputs writes their inputs)
      const dcRow = (noGoal ^ 1) & +!Number.isNaN(velocity[i]!);
      dcRows[dcCount] = i;
      dcCount += dcRow;
      const donor = +((bits & DONOR) !== 0);
      mode[i] = DEMAND_MODE;
      // Receivers first, as 0/1 and bit operations, not jumps (random rows would mispredict
      // them): while a level is yielded to, a row missing its goal loses the spare unless it is
      // at that level, and a row without a goal (never missing one) loses it too, and yields
      // when it is less important. A goal row that is not missing keeps its choice.
      const drop = yielding & ((missing & +(imp !== yieldTo)) | noGoal);
      const yields = noGoal & +(imp > yieldTo);
      yieldsRow = yields;
      const wanted = ruleDemand[i]!;
      const demanded = Math.min(wanted, max);
      const claim = yields === 1 ? yieldingDemand(demanded, use) : wanted;
      target[i] = demandTarget(claim, min, max);
      // Left-over goes first to batch, then as spare to everyone: under weights a constrained
      // partition needs its demand (traffic or probe), not a slice of the spare on top (that was
      // a cap's padding against throttling; on the real testbed it swung a partition's weight
      // between 1,300 and 4,600 whenever its CPU delay crossed the threshold).
      // A goal partition's entitlement is its goal controller's: no spare on top. Spare would
      // raise its weight, and under contention its goal, not its use, bounds what it takes —
      // whether it meets its goal (the rest is for the tiers below) or its traffic is below its
      // goal (more CPU would not help: on the real testbed such a partition soaked up what a
      // donor gave, ~560m → 1,440m, and the level below waited). Receivers get their target as
      // demand.
      eligible[i] = (+((bits & RECEIVER) !== 0) | noGoal) & (drop - 1); // & 0 when dropped, else & all ones
      demand[i] = yields === 1 ? claim : demanded;
      // A donor's steps are its goal controller's (at most −GOAL_STEP_FRACTION a cycle): the
      // shrink limit does not slow them again, so its surplus reaches the levels below in a few
      // cycles (at −10 % a cycle it took 1.2–1.5 s on the real testbed, goals-tiers-real).
      prevNeed[i] =
        donor === 1 ? clamp(wanted, min, max) : protectedNeed(NETWORK, pc, pd, min, max);
    } else if (hasPrev) {
      src = HELD;
      mode[i] = HELD_MODE;
      target[i] = clamp(pc, min, max);
      eligible[i] = 0;
      demand[i] = pd;
      prevNeed[i] = protectedNeed(HELD, pc, pd, min, max);
    } else {
      src = UNSEEN;
      mode[i] = DEMAND_MODE;
      target[i] = min;
      eligible[i] = 1;
      demand[i] = Number.NaN; // nothing measured yet: the first real demand is not smoothed
      prevNeed[i] = Number.NaN; // rules.ts protectedNeed: nothing to protect
    }
    rowBits[i] = packBits(src, 0, false, hasPrev, yieldsRow === 1);
    const pi = hasData ? performanceIndexOrNaN(g, served[i]!) : Number.NaN;
    overGoal[i] = +(pi > 1);
    if (pi > 1 && imp < receiverImportance) receiverImportance = imp;
  }
  return {
    receiverImportance,
    yieldTo: missedAt,
    congested: congested === 1,
    anyBatch,
    leastImportantWanting,
    dcCount,
  };
}

/**
 * The donor cap's inputs on its rows (dcRows' first `count`, assessDemand's): eligible 1, this
 * window's donor bit and missesGoal (1 = this window, 2 = this and the last). Only those rows
 * are written (donorCaps visits only them; the step zeroes `eligible`), in a loop over them,
 * not in assessDemand's over every row. Returns true.
 */
function donorCapInputs(
  s: StepArrays,
  count: number,
  eligible: Uint8Array,
  donor: Uint8Array,
  missesGoal: Uint8Array,
): boolean {
  const rows = s.dcRows;
  const ruleBits = s.rule.bits;
  const prevFlags = s.prev.flags;
  const DONOR = DemandBit.donor;
  const MISSES = DemandBit.missesGoal;
  const missedFlag = FLAG_MISSED_GOAL;
  for (let k = 0; k < count; k++) {
    const i = rows[k]!;
    const bits = ruleBits[i]!;
    eligible[i] = 1;
    donor[i] = +((bits & DONOR) !== 0);
    missesGoal[i] = +((bits & MISSES) !== 0) * (1 + +((prevFlags[i]! & missedFlag) === missedFlag));
  }
  return true;
}

/**
 * Each partition's directive (weight and cap code) and its decision's packed reasons. A
 * receiver is a partition missing its goal (PI > 1) at `receiverImportance`, the most important
 * level where one is missed (6: none); it is marked here, in the same pass, not in one of its own.
 */
function expressAll(
  s: StepArrays,
  bands: { normal: WeightBand; goal: WeightBand },
  suppressBatch: boolean,
  receiverImportance: number,
  useWeightFloor: boolean,
  order: Int32Array,
): void {
  const { t, capacity, final, weights, capCode, bits } = s;
  const { marks, overGoal, dcCapped } = s;
  const prevWeight = s.prev.weight;
  const divisors = divisorsFor(t, s.ratio);
  const importance = t.importance;
  const batch = t.batch;
  const capped = t.capped;
  // a held row's max column is its guarantee; its cap is what was configured
  const limit = t.limitCpuMillis;
  const goals = t.goalPacketsPerSec;
  const n = t.size;
  // the light-partition floors by importance (all 0 with the floor off: no row gets one)
  const floorAt = s.weightFloorAt;
  if (useWeightFloor)
    weightFloorsByImportance(n, final, batch, importance, divisors, capacity, floorAt);
  else floorAt.fill(0);
  // a light row: a network partition (data, not batch) without a goal whose demand is its use
  // + headroom (DemandKind "use") and that does not yield (a yielding partition's weight must
  // not grow against the receivers it yields to)
  const kinds = s.rule.kind;
  const has = s.cols.has;
  const USE = DemandKindCode.use;
  const yieldsBit = packBits(0, 0, false, false, true); // assessDemand wrote it
  // the weights, the cap codes and the decisions' packed reasons in one walk
  const { fraction, stepOf, moves, weightPerMilli } = weightFrame(divisors, capacity, bands);
  const goalDonor = CapCode.goalDonor;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const cpu = final[i]!;
    const imp = importance[i]!;
    const isBatch = batch[i] === 1;
    const hasGoal = +(goals[i]! > 0); // rules.ts hasGoal
    const rowBits = bits[i]!;
    // 1 for a light row (batch rows take the other branch below, so the test need not ask);
    // `&`, not `&&`: no jump on each of its four parts
    const light = +(kinds[i] === USE) & has[i]! & (hasGoal ^ 1) & +((rowBits & yieldsBit) === 0);
    // batch: the minimum (weightAt's own answer), without its arithmetic; the class order puts a
    // block's batch rows together, so this jump goes one way for long runs
    weights[i] = isBatch
      ? 1
      : weightAt(
          capacity,
          fraction,
          stepOf,
          moves,
          cpu,
          imp,
          divisors[imp]!,
          weightPerMilli[imp]!,
          prevWeight[i]!,
          hasGoal,
          false,
          floorAt[imp]! * light, // floors are finite: 0 for a row that is not light
        );
    // `&`, not `&&`: no jump on a PI that random rows put on either side of 1
    const isReceiver = (overGoal[i]! & +(imp === receiverImportance)) === 1;
    capCode[i] =
      dcCapped[i] === 1
        ? goalDonor
        : capCodeFor(cpu, limit[i]!, capacity, capped[i] === 1, isBatch, suppressBatch);
    // the source, had-previous and yields bits are assessDemand's: the marks and the receiver on top
    bits[i] = rowBits | packBits(0, marks[i]!, isReceiver, false, false);
  }
}
