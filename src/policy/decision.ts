// The policy's verdict on one partition. Its reasons are kept as a few numbers (StepReasons,
// one set of arrays per step shared by its decisions); the `why`
// sentence is written from them the first time someone reads it (a log line, the API, a
// test), so a 10,000-partition step does not format 10,000 sentences nobody reads (formatting
// them all costs more than the rest of the step). The demand assessment is not stored either:
// it is a pure function of the throughput, velocity, last cycle's values and the knobs, so the
// explanation recomputes it with the same code.
// JSON.stringify goes through toJSON and includes `why`; an object spread ({...d}) copies own
// fields only and so leaves it out: read `d.why` or use `d.toJSON()` instead.
import type { Decision, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import type { CpuMillis } from "../core/units.ts";
import { assessNetworkDemand, type DemandAssessment } from "./demand.ts";
import { Marks } from "./postprocess.ts";
import {
  clamp,
  type DemandSource,
  demandTarget,
  goalBase,
  IMPORTANCE_WEIGHT_RATIO,
  importanceOf,
  maxOf,
  minOf,
  minProbeStep,
  protectedNeed,
  SOURCES,
  Source,
  weightForAllocation,
  yieldingDemand,
} from "./rules.ts";
import { FLAG_RISING } from "./state.ts";
import type { PolicyKnobs } from "./types.ts";

/** What every decision of one step shares. */
export interface StepContext {
  knobs: PolicyKnobs;
  capacityCpuMillis: number;
  deadbandCpuMillis: number;
}

/**
 * The few numbers per partition a decision's reasons need beyond its own fields, kept by the
 * step in arrays indexed like its spec list (one set per step, shared by its decisions, so a
 * decision is a small object).
 */
export interface StepReasons {
  context: StepContext;
  specs: readonly PartitionSpec[];
  throughput: ReadonlyArray<Throughput | null>;
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
  /** Weight divisor by importance (weightDivisors). */
  divisors: Float64Array;
  /** Most important level where a goal controller receives this step (6 = none): see yieldToReceivers. */
  yieldTo: number;
  /** The weight each directive carries (after the weight dead-band), filled before any why is read. */
  weights: Float64Array;
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
  minCpuMillis: number;
  maxCpuMillis: number;
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
  /** Index into CAP_REASONS: 0 none, 1 max, 2 capped, 3 suppress-batch. */
  capCode: number;
}

/** Packing of source, post-processor marks, receiver and yielding into one small integer. */
const MARKS_SHIFT = 2;
const RECEIVER_BIT = 1 << 5;
const HAD_PREVIOUS_BIT = 1 << 6;
const YIELDS_BIT = 1 << 7;
export const packBits = (
  source: number,
  marks: number,
  receiver: boolean,
  hadPrevious: boolean,
  yields = false,
): number =>
  source |
  (marks << MARKS_SHIFT) |
  (receiver ? RECEIVER_BIT : 0) |
  (hadPrevious ? HAD_PREVIOUS_BIT : 0) |
  (yields ? YIELDS_BIT : 0);

export class WeirDecision implements Decision {
  readonly partition: PartitionId;
  readonly demandCpuMillis: CpuMillis;
  readonly previousCpuMillis: CpuMillis;
  readonly cpuMillis: CpuMillis;
  readonly velocityPacketsPerCpuSec: number | null;
  readonly performanceIndex: number | null;
  readonly #reasons: StepReasons;
  readonly #index: number;
  #why: string | undefined;

  constructor(
    reasons: StepReasons,
    index: number,
    partition: PartitionId,
    demandCpuMillis: CpuMillis,
    previousCpuMillis: CpuMillis,
    cpuMillis: CpuMillis,
    velocityPacketsPerCpuSec: number | null,
    performanceIndex: number | null,
  ) {
    this.partition = partition;
    this.demandCpuMillis = demandCpuMillis;
    this.previousCpuMillis = previousCpuMillis;
    this.cpuMillis = cpuMillis;
    this.velocityPacketsPerCpuSec = velocityPacketsPerCpuSec;
    this.performanceIndex = performanceIndex;
    this.#reasons = reasons;
    this.#index = index;
    this.#why = undefined;
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
    return this.#reasons.specs[this.#index]!;
  }

  get throughput(): Throughput | null {
    return this.#reasons.throughput[this.#index]!;
  }

  get context(): StepContext {
    return this.#reasons.context;
  }

  get detail(): DecisionDetail {
    const r = this.#reasons;
    const i = this.#index;
    const spec = r.specs[i]!;
    const bits = r.bits[i]!;
    const prevDemand = r.prevDemand[i]!;
    const ideal = r.ideal[i]!;
    const leftover = r.leftover[i]!;
    const source = bits & 3;
    const marks = (bits >> MARKS_SHIFT) & 7;
    const hadPrevious = (bits & HAD_PREVIOUS_BIT) !== 0;
    const prev = hadPrevious ? this.previousCpuMillis : Number.NaN;
    const min = minOf(spec);
    const max = maxOf(spec);
    const tp = r.throughput[i]!;
    const assessment =
      source === Source.network && tp !== null
        ? assessNetworkDemand(
            tp,
            this.velocityPacketsPerCpuSec,
            hadPrevious ? prev : null,
            Number.isNaN(prevDemand) ? null : prevDemand,
            spec.goalPacketsPerSec,
            r.context.knobs,
            minProbeStep(r.context.deadbandCpuMillis),
            undefined,
            goalBase(
              r.prevWeight[i]!,
              hadPrevious ? prev : null,
              r.context.capacityCpuMillis,
              r.divisors[importanceOf(spec)]!,
            ),
            (r.prevFlags[i]! & FLAG_RISING) !== 0,
          )
        : null;
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
    return {
      source: SOURCES[source]!,
      importance: importanceOf(spec),
      weightDivisor: r.divisors[importanceOf(spec)]!,
      assessment,
      receiver: (bits & RECEIVER_BIT) !== 0,
      yieldsTo: yields ? r.yieldTo : null,
      weight: r.weights[i]!,
      minCpuMillis: min,
      maxCpuMillis: max,
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

/** 12345.6 → "12,346" (en-US grouping without Intl: a sentence has up to a dozen numbers). */
export function formatInt(x: number): string {
  const r = Math.round(x);
  if (!Number.isFinite(r) || Math.abs(r) >= 1e21) return String(r);
  const digits = String(Math.abs(r));
  let out = digits.slice(0, digits.length % 3 || 3);
  for (let k = out.length; k < digits.length; k += 3) out += `,${digits.slice(k, k + 3)}`;
  return r < 0 ? `-${out}` : out;
}
const int = formatInt;
const millis = (x: number): string => `${int(x)}m`;
const pct = (fraction: number): string => `${Math.round(fraction * 100)} %`;

/** One plain sentence with the numbers: demand, then what the allocation made of it. */
export function explain(d: WeirDecision, x: DecisionDetail = d.detail): string {
  const parts: string[] = [];
  const tp = d.throughput;
  const k = d.context.knobs;
  const a = x.assessment;
  const v = d.velocityPacketsPerCpuSec;
  const h = pct(k.headroomFraction);
  const goal = d.spec.goalPacketsPerSec;
  const share = k.leftover !== "idle";

  switch (x.source) {
    case "network": {
      if (!tp || !a) break;
      const trafficNeed = a.trafficNeedCpuMillis;
      const offeredAt =
        v === null
          ? `offered ${int(tp.offeredPacketsPerSec)} pps`
          : `offered ${int(tp.offeredPacketsPerSec)} pps at ${int(v)} pkt/cpu-s`;
      if (a.kind === "idle") {
        parts.push(
          `served no packets (offered ${int(tp.offeredPacketsPerSec)} pps, uses ${millis(a.usedCpuMillis)}), so nothing is credited`,
        );
      } else if (a.kind === "use") {
        const delay =
          tp.cpuDelayFraction == null ? "" : `, waiting for CPU ${pct(tp.cpuDelayFraction)}`;
        const calm = `not constrained (throttled ${pct(tp.throttledFraction)}, ${dropText(tp, a)}${delay})`;
        // Offered load worth more than 10 % above use is worth saying out loud (velocity drift
        // alone moves the estimate by a few per cent a cycle).
        if (trafficNeed !== null && trafficNeed > a.useNeedCpuMillis * 1.1 + 0.5)
          parts.push(
            `${offeredAt} would need ${millis(trafficNeed)} (+${h} headroom), but it is ${calm} and uses ${millis(a.usedCpuMillis)}, so only use + headroom ${millis(a.useNeedCpuMillis)} is credited`,
          );
        else
          parts.push(
            `uses ${millis(a.usedCpuMillis)} and is ${calm}, so needs ${millis(a.useNeedCpuMillis)} (+${h} headroom)`,
          );
      } else if (a.kind === "traffic") {
        parts.push(
          `${offeredAt} needs ${millis(trafficNeed ?? 0)} (+${h} headroom); ${congestionText(tp, a)} confirms`,
        );
      } else {
        let reason: string;
        if (v === null) reason = "velocity is unknown";
        else if (trafficNeed === null) reason = "offered load is unknown";
        else
          reason = `${offeredAt} (${millis(trafficNeed)}) would fit in ${millis(a.probeFromCpuMillis)}`;
        parts.push(
          `${congestionText(tp, a)} but ${reason}, so probing ×${k.probeFactor} from ${millis(a.probeFromCpuMillis)} to ${millis(a.rawDemandCpuMillis)}`,
        );
      }
      const floored =
        !a.goalReceiver &&
        a.goalFloorCpuMillis !== null &&
        a.demandCpuMillis === a.goalFloorCpuMillis;
      if (a.donor && goal !== undefined) {
        const pi = d.performanceIndex;
        parts.push(
          `goal ${int(goal)} pps met (PI ${pi === null ? "?" : pi.toFixed(2)}), so it claims ${millis(a.demandCpuMillis)} (last entitlement × PI + ${pct(k.goalHeadroomFraction)}) and donates ${millis(a.undonatedDemandCpuMillis - a.demandCpuMillis)} of the ${millis(a.undonatedDemandCpuMillis)} its traffic claims`,
        );
      } else if (a.goalReceiver && goal !== undefined) {
        const pi = d.performanceIndex;
        parts.push(
          `goal ${int(goal)} pps ${pi !== null && pi > 1 ? "missed" : `met by less than its ${pct(k.goalHeadroomFraction)} margin`} (PI ${pi === null ? "?" : pi.toFixed(2)}) while short of CPU, so it receives: ${millis(a.demandCpuMillis)} (last entitlement × PI + ${pct(k.goalHeadroomFraction)}, at most +25 % a cycle)`,
        );
      } else if (!floored && Math.abs(a.demandCpuMillis - a.rawDemandCpuMillis) >= 0.5)
        parts.push(`smoothed to ${millis(a.demandCpuMillis)}`);
      if (floored && goal !== undefined)
        parts.push(
          v !== null && a.demandCpuMillis < (goal / v) * 1000 - 0.5
            ? `goal ${int(goal)} pps, but only ${int(tp.offeredPacketsPerSec)} pps arrive and more CPU would not help, so its traffic + ${h} floors demand at ${millis(a.demandCpuMillis)}`
            : `goal ${int(goal)} pps floors demand at ${millis(a.demandCpuMillis)}`,
        );
      else if (goal !== undefined && goal > 0 && v === null)
        parts.push(`goal ${int(goal)} pps sets no floor yet (velocity unknown)`);
      if (x.yieldsTo !== null)
        parts.push(
          `a goal partition at importance ${x.yieldsTo} misses its goal while short of CPU, so this importance-${x.importance} partition without a goal yields: it claims at most its use + headroom ${millis(a.useNeedCpuMillis)} and no left-over`,
        );
      if (a.demandCpuMillis < x.minCpuMillis - 0.5)
        parts.push(`raised to its guarantee ${millis(x.minCpuMillis)}`);
      if (a.demandCpuMillis > x.maxCpuMillis + 0.5)
        parts.push(`capped at max ${millis(x.maxCpuMillis)}`);
      break;
    }
    case "batch":
      parts.push(
        share
          ? `batch: no traffic demand, takes left-over up to max ${millis(x.maxCpuMillis)}`
          : "batch: no traffic demand and left-over is kept idle, so it gets its guarantee",
      );
      break;
    case "held": {
      const prev = x.previousCpuMillis ?? 0;
      if (prev > x.maxCpuMillis + 0.5)
        parts.push(
          `no throughput this cycle: its previous ${millis(prev)} is cut to its max ${millis(x.maxCpuMillis)}`,
        );
      else if (prev < x.minCpuMillis - 0.5)
        parts.push(
          `no throughput this cycle: its previous ${millis(prev)} is raised to its guarantee ${millis(x.minCpuMillis)}`,
        );
      else parts.push(`no throughput this cycle: keeps its previous ${millis(prev)}`);
      break;
    }
    case "unseen":
      parts.push(
        `no throughput yet and no previous allocation: starts at its guarantee ${millis(x.minCpuMillis)}${share ? " plus a weighted share of the left-over" : ""}`,
      );
      break;
  }

  if (d.performanceIndex !== null && tp && goal !== undefined)
    parts.push(
      `performance index ${d.performanceIndex.toFixed(2)} (goal ${int(goal)} ÷ served ${int(tp.servedPacketsPerSec)} pps)${x.receiver ? `, a receiver (misses its goal at importance ${x.importance}, the most important level with a miss)` : ""}`,
    );
  if (x.effectiveMinCpuMillis < x.minCpuMillis - 0.5)
    parts.push(
      `guarantees exceed capacity ${millis(d.context.capacityCpuMillis)}, so its min ${millis(x.minCpuMillis)} is cut to ${millis(x.effectiveMinCpuMillis)}`,
    );
  const guaranteeCut = x.effectiveMinCpuMillis < x.minCpuMillis - 0.5;
  if (x.tierGrantCpuMillis < x.targetCpuMillis - 0.5 && !guaranteeCut)
    parts.push(
      `importance ${x.importance} tier had ${millis(x.tierGrantCpuMillis)} of ${millis(x.targetCpuMillis)} for it`,
    );
  if (x.leftoverCpuMillis >= 0.5) parts.push(`+${millis(x.leftoverCpuMillis)} left-over`);
  if (x.deadband && x.previousCpuMillis !== null)
    parts.push(
      `change to ${millis(x.idealCpuMillis)} is inside the dead-band (${millis(d.context.deadbandCpuMillis)}), so it stays at ${millis(x.previousCpuMillis)}`,
    );
  if (x.shrinkLimited && x.protectedCpuMillis !== null)
    parts.push(
      `shrink limited to ${pct(k.maxShrinkFractionPerCycle)} of ${millis(x.protectedCpuMillis)} a cycle (wanted ${millis(x.idealCpuMillis)})`,
    );
  if (x.boundsFixed)
    parts.push(
      `adjusted to stay within [min, max] and capacity ${millis(d.context.capacityCpuMillis)}`,
    );
  parts.push(`granted ${millis(d.cpuMillis)}`);
  parts.push(expressionText(d, x));
  return parts.join("; ");
}

/** How the entitlement reaches the kernel: weight or idle class, and a cap only with a reason. */
function expressionText(d: WeirDecision, x: DecisionDetail): string {
  const capacity = d.context.capacityCpuMillis;
  const k = d.context.knobs;
  const base =
    x.source === "batch"
      ? "runs in the idle class (minimum weight where the kernel has none), taking every idle cycle"
      : weightText(d.cpuMillis, capacity, x.weightDivisor, x.weight);
  switch (x.capCode) {
    case 1:
      return `${base}; capped at its max ${millis(x.maxCpuMillis)} (+${pct(k.burstFraction)} burst)`;
    case 2:
      return `${base}; capped at its entitlement (configured capped, +${pct(k.burstFraction)} burst)`;
    case 3:
      return `${base}; capped at its entitlement ${millis(d.cpuMillis)} while network partitions stay congested`;
    default:
      return `${base}; no cap`;
  }
}

/** "weight 1,250 (its share of 2,000m ÷ 2: 1 more important level present, each weighing 2× the one below), …". */
function weightText(
  cpuMillis: number,
  capacity: number,
  divisor: number,
  directed: number,
): string {
  const w = weightForAllocation(cpuMillis, capacity, divisor);
  const levels = Math.round(Math.log(divisor) / Math.log(IMPORTANCE_WEIGHT_RATIO));
  const share =
    divisor > 1
      ? `its share of ${millis(capacity)} ÷ ${int(divisor)}: ${levels} more important level${levels === 1 ? "" : "s"} present, each weighing ${IMPORTANCE_WEIGHT_RATIO}× the one below`
      : `its share of ${millis(capacity)}`;
  if (Number.isNaN(directed) || directed === w)
    return `weight ${int(w)} (${share}), so it may use any idle CPU`;
  return `weight stays ${int(directed)}: ${int(w)} (${share}) is inside the weight dead-band, so it may use any idle CPU`;
}

function dropText(tp: Throughput, a: DemandAssessment): string {
  if (a.dropsIgnored)
    return `${int(tp.droppedPacketsPerSec)} pps dropped while using under half its allocation, not CPU congestion`;
  return "no drops";
}

function congestionText(tp: Throughput, a: DemandAssessment): string {
  const bits: string[] = [];
  if (a.throttled) bits.push(`throttled ${pct(tp.throttledFraction)}`);
  if (a.dropping) bits.push(`dropping ${int(tp.droppedPacketsPerSec)} pps`);
  if (a.delayed) bits.push(`waiting for CPU ${pct(tp.cpuDelayFraction ?? 0)} of the time`);
  return bits.join(" and ");
}
