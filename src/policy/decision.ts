// The policy's verdict on one partition. Its reasons are kept as a few numbers (StepReasons,
// one set of arrays per step shared by its decisions); the `why`
// sentence is written from them the first time someone reads it (a log line, the API, a
// test), so a 10,000-partition step does not format 10,000 sentences nobody reads (formatting
// them all costs more than the rest of the step). The demand assessment is not stored either:
// it is a pure function of the throughput, velocity, last cycle's values and the knobs, so the
// explanation recomputes it with the same code.
// A decision is a view of its index into those arrays: its numbers are getters. JSON.stringify
// goes through toJSON and includes them and `why`; an object spread ({...d}) copies own fields
// only and so copies none of them: use `d.toJSON()` instead.
import type { Decision, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";
import { assessDemandOfRow, type DemandAssessment, performanceIndexOrNaN } from "./demand.ts";
import { Marks } from "./postprocess.ts";
import {
  clamp,
  type DemandSource,
  demandTarget,
  goalBase,
  minProbeStep,
  protectedNeed,
  roundHalfUp,
  SOURCES,
  Source,
  yieldingDemand,
} from "./rules.ts";
import { FLAG_RISING } from "./state.ts";
import { divisorsFor, type PartitionTable, type ThroughputColumns, throughputAt } from "./table.ts";
import type { DecisionTable, PolicyKnobs } from "./types.ts";
import { explain } from "./why.ts";

/** What every decision of one step shares. */
export interface StepContext {
  knobs: PolicyKnobs;
  capacityCpuMillis: number;
  deadbandCpuMillis: number;
  /** Each importance level's weight ÷ the one below's in this step's weights (rules.ts importanceWeightRatioFor). */
  importanceWeightRatio: number;
  /** The same in last step's weights, which goalBase converts back to millicores. */
  prevImportanceWeightRatio: number;
}

/**
 * The few numbers per partition a decision's reasons need beyond its own fields, kept by the
 * step in arrays indexed like its spec list (one set per step, shared by its decisions, so a
 * decision is a small object).
 */
export interface StepReasons {
  context: StepContext;
  table: PartitionTable;
  throughput: ThroughputColumns;
  /** Last cycle's smoothed demand (NaN = none). */
  prevDemand: Float64Array;
  /** Core allocation before post-processing, and its left-over part. */
  ideal: Float64Array;
  leftover: Float64Array;
  /** Guarantee honoured (less than min only when the mins exceed capacity). */
  effectiveMin: Float64Array;
  /** packBits(source, marks, receiver, hadPrevious). */
  bits: Uint8Array;
  /** Why the directive has a cap: index into CAP_REASONS (0 = no cap). */
  capCode: Uint8Array;
  /** Batch is capped this cycle (network partitions stayed congested). */
  batchSuppressed: boolean;
  /** Last cycle's directed weight (NaN = none): the goal controller's base. */
  prevWeight: Float64Array;
  /** Last cycle's flags (state.ts FLAG_RISING, FLAG_MISSED_GOAL). */
  prevFlags: Uint8Array;
  /** Last cycle's goal margins by cycles (0 or NaN = none). */
  prevGoalMargin: Float64Array;
  /** Most important level where a goal controller receives this step (6 = none): see weir.ts assessDemand (receivers first). */
  yieldTo: number;
  /** The weight each directive carries (after the weight dead-band), filled before any why is read. */
  weights: Float64Array;
  /** The light-partition weight floors by importance (express.ts weightFloorsByImportance); null when the policy has the floor off. */
  weightFloorAt: Float64Array | null;
  /**
   * The decision's own numbers: this step's demand (NaN = none measured; the demand shown is
   * made from it when read), last allocation (NaN = none), allocation, velocity (NaN = null).
   */
  demand: Float64Array;
  previous: Float64Array;
  cpuMillis: Float64Array;
  velocity: Float64Array;
  /** A capped donor's trimmed set point (donor-cap.ts donorCapSetpoint; NaN = none). */
  donorSetpoint: Float64Array;
  /** This step's goal margins by cycles (demand.ts GOAL_MARGIN_GAIN; 0 = none). */
  goalMargin: Float64Array;
}

/** The reasons behind one decision as a plain object (for tests, the API, debugging). */
export interface DecisionDetail {
  source: DemandSource;
  importance: number;
  /** Its importance's weight divisor (weightDivisors): 1 at the most important level present. */
  weightDivisor: number;
  /** Demand assessment of a network partition that reported throughput, else null. */
  assessment: DemandAssessment | null;
  /** Misses its goal at the most important level where goals are missed. */
  receiver: boolean;
  /**
   * Importance of the goal receivers this partition (no goal, less important) yields to: it
   * claims at most its use + headroom and no spare. Null when it does not yield.
   */
  yieldsTo: number | null;
  /** The weight the directive carries (after the weight dead-band). */
  weight: number;
  /**
   * The light-partition weight floor it was given (express.ts weightFloorsByImportance): a
   * network partition without a goal, not constrained, not yielding. Null otherwise.
   */
  weightFloor: number | null;
  minCpuMillis: number;
  /** The configured max (its cap when below capacity; a `held` partition's entitlement stops at its min). */
  maxCpuMillis: number;
  /** Held to its guarantee by the manager: its throughput is stale (PartitionSpec.held). */
  held: boolean;
  /** Guarantee honoured (less than min only when the mins exceed capacity). */
  effectiveMinCpuMillis: number;
  /** What the tier phase aimed at (demand within [min, max]) and what it reached. */
  targetCpuMillis: number;
  tierGrantCpuMillis: number;
  leftoverCpuMillis: number;
  /** Core allocation before post-processing. */
  idealCpuMillis: number;
  previousCpuMillis: number | null;
  /** What of the previous allocation the shrink limit protected. */
  protectedCpuMillis: number | null;
  deadband: boolean;
  shrinkLimited: boolean;
  boundsFixed: boolean;
  /** Index into CAP_REASONS: 0 none, 1 max, 2 capped, 3 suppress-batch, 4 goal-donor. */
  capCode: number;
  /** A goal donor's cap: the trimmed set point of its cap (donor-cap.ts donorCapSetpoint); null when untrimmed or not capped. */
  donorSetpointCpuMillis: number | null;
  /** Goals by cycles (PolicyKnobs.goalCycleFraction > 0): its learnt margin over its goal; absent otherwise. */
  goalMarginFraction?: number;
}

/** Packing of source, post-processor marks, receiver and yielding into one small integer. */
const MARKS_SHIFT = 2;
const RECEIVER_SHIFT = 5;
const HAD_PREVIOUS_SHIFT = 6;
const YIELDS_SHIFT = 7;
const RECEIVER_BIT = 1 << RECEIVER_SHIFT;
const HAD_PREVIOUS_BIT = 1 << HAD_PREVIOUS_SHIFT;
const YIELDS_BIT = 1 << YIELDS_SHIFT;
export const packBits = (
  source: number,
  marks: number,
  receiver: boolean,
  hadPrevious: boolean,
  yields = false,
): number =>
  // +flag << bit, not `flag ? bit : 0`: no jump for a row's flags to mispredict
  source |
  (marks << MARKS_SHIFT) |
  (+receiver << RECEIVER_SHIFT) |
  (+hadPrevious << HAD_PREVIOUS_SHIFT) |
  (+yields << YIELDS_SHIFT);

/**
 * One partition's decision: a view of index `i` into its step's arrays (two fields and the
 * cached `why`), so a step allocates no numbers per decision. Its fields are getters; JSON
 * goes through `toJSON`.
 */
export class WeirDecision implements Decision {
  readonly #reasons: StepReasons;
  readonly #index: number;
  #why: string | undefined;

  constructor(reasons: StepReasons, index: number) {
    this.#reasons = reasons;
    this.#index = index;
    this.#why = undefined;
  }

  get partition(): PartitionId {
    return this.#reasons.table.ids[this.#index]!;
  }

  /**
   * The demand shown, in whole millicores: the step's demand, at least the min; without one,
   * what the tier phase aimed at instead (weir.ts assessDemand: the min, or a held partition's
   * last allocation within its bounds; a network row's target is NaN exactly when its demand is).
   */
  get demandCpuMillis(): CpuMillis {
    const r = this.#reasons;
    const i = this.#index;
    const d = r.demand[i]!;
    const lo = r.table.minCpuMillis[i]!;
    if (!Number.isNaN(d)) return roundHalfUp(Math.max(d, lo));
    const source = r.bits[i]! & 3;
    if (source === Source.held)
      return roundHalfUp(clamp(r.previous[i]!, lo, r.table.maxCpuMillis[i]!));
    return roundHalfUp(source === Source.network ? Number.NaN : lo);
  }

  get previousCpuMillis(): CpuMillis {
    const p = this.#reasons.previous[this.#index]!;
    return Number.isNaN(p) ? 0 : p;
  }

  get cpuMillis(): CpuMillis {
    return this.#reasons.cpuMillis[this.#index]!;
  }

  get velocityPacketsPerCpuSec(): number | null {
    const v = this.#reasons.velocity[this.#index]!;
    return Number.isNaN(v) ? null : v;
  }

  /** The step's PI, computed again (the same expression on the same columns). */
  get performanceIndex(): number | null {
    const r = this.#reasons;
    const i = this.#index;
    if (r.throughput.has[i] !== 1) return null;
    const pi = performanceIndexOrNaN(
      r.table.goalPacketsPerSec[i]!,
      r.throughput.servedPacketsPerSec[i]!,
    );
    return Number.isNaN(pi) ? null : pi;
  }

  /** One plain sentence with the numbers, written on first read. */
  get why(): string {
    if (this.#why === undefined) this.#why = explain(this, this.detail);
    return this.#why;
  }

  set why(text: string) {
    this.#why = text;
  }

  get spec(): PartitionSpec {
    return this.#reasons.table.specs[this.#index]!;
  }

  get throughput(): Throughput | null {
    return throughputAt(this.#reasons.throughput, this.#index, this.partition);
  }

  get context(): StepContext {
    return this.#reasons.context;
  }

  get detail(): DecisionDetail {
    const r = this.#reasons;
    const i = this.#index;
    const t = r.table;
    const bits = r.bits[i]!;
    const prevDemand = r.prevDemand[i]!;
    const ideal = r.ideal[i]!;
    const leftover = r.leftover[i]!;
    const source = bits & 3;
    const marks = (bits >> MARKS_SHIFT) & 7;
    const hadPrevious = (bits & HAD_PREVIOUS_BIT) !== 0;
    const prev = hadPrevious ? this.previousCpuMillis : Number.NaN;
    const min = t.minCpuMillis[i]!;
    const max = t.maxCpuMillis[i]!;
    const importance = t.importance[i]!;
    const divisor = divisorsFor(t, r.context.importanceWeightRatio)[importance]!;
    const prevDivisor = divisorsFor(t, r.context.prevImportanceWeightRatio)[importance]!;
    const tp = this.throughput;
    let assessment: DemandAssessment | null = null;
    if (source === Source.network && tp !== null) {
      // the step's rule on the step's columns and last cycle's values, as the step ran it
      assessment = assessDemandOfRow(
        r.throughput,
        i,
        r.velocity[i]!,
        prev,
        prevDemand,
        t.goalPacketsPerSec[i]!,
        goalBase(r.prevWeight[i]!, prev, r.context.capacityCpuMillis, prevDivisor) ?? Number.NaN,
        (r.prevFlags[i]! & FLAG_RISING) !== 0,
        minProbeStep(r.context.deadbandCpuMillis),
        r.context.knobs,
        r.prevGoalMargin[i]!,
      );
    }
    const yields = (bits & YIELDS_BIT) !== 0;
    const target =
      assessment !== null
        ? demandTarget(
            yields
              ? yieldingDemand(assessment.demandCpuMillis, assessment.useNeedCpuMillis)
              : assessment.demandCpuMillis,
            min,
            max,
          )
        : source === Source.held
          ? clamp(prev, min, max)
          : min;
    const need = protectedNeed(source, prev, prevDemand, min, max);
    const floored =
      r.weightFloorAt !== null &&
      assessment !== null &&
      assessment.kind === "use" &&
      !(t.goalPacketsPerSec[i]! > 0) && // rules.ts hasGoal
      !yields;
    return {
      source: SOURCES[source]!,
      importance,
      weightDivisor: divisor,
      assessment,
      receiver: (bits & RECEIVER_BIT) !== 0,
      yieldsTo: yields ? r.yieldTo : null,
      weight: r.weights[i]!,
      weightFloor: floored ? r.weightFloorAt![importance]! : null,
      minCpuMillis: min,
      maxCpuMillis: t.limitCpuMillis[i]!,
      held: t.held[i] === 1,
      effectiveMinCpuMillis: r.effectiveMin[i]!,
      targetCpuMillis: target,
      tierGrantCpuMillis: ideal - leftover,
      leftoverCpuMillis: leftover,
      idealCpuMillis: ideal,
      previousCpuMillis: hadPrevious ? prev : null,
      protectedCpuMillis: hadPrevious ? (Number.isNaN(need) ? prev : Math.min(prev, need)) : null,
      deadband: (marks & Marks.deadband) !== 0,
      shrinkLimited: (marks & Marks.shrinkLimited) !== 0,
      boundsFixed: (marks & Marks.boundsFixed) !== 0,
      capCode: r.capCode[i]!,
      donorSetpointCpuMillis: Number.isNaN(r.donorSetpoint[i]!) ? null : r.donorSetpoint[i]!,
      ...(r.goalMargin[i]! > 0 ? { goalMarginFraction: r.goalMargin[i]! } : {}),
    };
  }

  toJSON(): Decision {
    return {
      partition: this.partition,
      demandCpuMillis: this.demandCpuMillis,
      previousCpuMillis: this.previousCpuMillis,
      cpuMillis: this.cpuMillis,
      velocityPacketsPerCpuSec: this.velocityPacketsPerCpuSec,
      performanceIndex: this.performanceIndex,
      why: this.why,
    };
  }
}

/** The decisions of one step: row `i`'s view is made on first request and then kept. */
export class StepDecisions implements DecisionTable {
  readonly #reasons: StepReasons;
  #views: WeirDecision[] | null = null;

  constructor(reasons: StepReasons) {
    this.#reasons = reasons;
  }

  get size(): number {
    return this.#reasons.table.size;
  }

  at(i: number): WeirDecision {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`decision row ${i} of ${this.size}`);
    this.#views ??= new Array(this.size);
    let d = this.#views[i];
    if (d === undefined) {
      d = new WeirDecision(this.#reasons, i);
      this.#views[i] = d;
    }
    return d;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size;
  }

  /** What `at(i).velocityPacketsPerCpuSec` reads (NaN for its null), with no view made. */
  velocityAt(i: number): number {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`decision row ${i} of ${this.size}`);
    return this.#reasons.velocity[i]!;
  }
}
