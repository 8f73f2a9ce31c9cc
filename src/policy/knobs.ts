// weir's control-law knobs, declared once (POLICY_KNOBS); defaults, the config schema and the
// mapping from config keys to PolicyKnobs fields derive from the declaration. The prose explaining
// each one is in README.md.
import type { ChoiceRule, NumberRule } from "../core/bounds.ts";
import type { CpuMillis } from "../core/units.ts";
import { OPEN_LOOP_GOAL_CYCLE_SHARE } from "./demand.ts";
import { DONOR_CAP_MARGIN_FRACTION, DONOR_CAP_PERIOD_MS } from "./donor-cap.ts";
import type { PolicyKnobs } from "./types.ts";

/** Every PolicyKnobs field but the capacity (which comes from the host, not from config). */
export type TunableField = Exclude<keyof PolicyKnobs, "capacityCpuMillis">;

/** What a knob's number means: a fraction (0.2 = 20 %), a multiplier, a count of cycles. */
export type KnobUnit = "fraction" | "multiplier" | "cycles" | "milliseconds" | "choice";

/** One knob: the PolicyKnobs field it sets, default, rule, unit, one-line description. */
export type KnobDeclaration = {
  [F in TunableField]: {
    readonly field: F;
    readonly default: PolicyKnobs[F];
    readonly rule: PolicyKnobs[F] extends string ? ChoiceRule : NumberRule;
    readonly unit: KnobUnit;
    readonly description: string;
  };
}[TunableField];

/**
 * Every knob of the control law, declared once: the key under `policy:` in the config, the
 * PolicyKnobs field it sets, its default, the rule a value must keep, its unit and what it does.
 * The config schema (src/manager/config.ts), defaultPolicyKnobs, the README's table (checked by
 * knobs.test.ts) and the JSON Schema all come from here. Why each default is what it is:
 *
 * - headroom 0.2: a partition is given 20 % more than its traffic or use needs, so a burst
 *   inside one cycle does not throttle it before the next cycle sees it.
 * - probeFactor 1.5: a congested partition whose real demand is unknown gets +50 % a cycle
 *   (from 100m to 1,000m in 6 cycles, 0.6 s at the default 100 ms cycle).
 * - deadband 0.01: changes smaller than 1 % of capacity are not made (20m on 2 CPUs), at most
 *   DEADBAND_MAX_CPU_MILLIS (50m, weir.ts; `deadbandCpuMillis` gives the band in force).
 * - maxShrinkPerCycle 0.1: what a partition needed may shrink by 10 % a cycle at most.
 * - smoothingUp 0.7 / smoothingDown 0.2: a congested partition's demand follows a rise with 70 %
 *   of the gap a cycle (91 % after two cycles, inside the 300 ms reaction budget); falls, and an
 *   uncongested partition's rises, go at 20 %.
 * - velocitySmoothing 0.3: packets per CPU-second drifts ±30 % with the host's clock speed;
 *   a 0.3 EWMA follows a step in 6 cycles (88 %) yet damps one-window noise to a third.
 * - throttledThreshold 0.05: throttled in 5 % of CFS periods or more counts as constrained.
 * - leftover "batch-first": capacity nobody's demand claims goes first to batch partitions, then
 *   as spare to the others, so network partitions' weights follow their demand
 *   and are not diluted by spare (under weights the kernel hands idle CPU to whoever runs).
 * - cpuDelayThreshold 0.5: waiting for a CPU as long as it ran counts as constrained (WLM's
 *   execution velocity below 50 %). A CPU-bound loop beside an equal-weight hog on one CPU waits
 *   50-67 % of the time, beside an idle-class hog 1-7 %; but three packet servers and their load
 *   generator on 2 CPUs wait 23-34 % with no hog at all (real testbed), and at 0.25 that noise
 *   probed their weights up and down several times a second.
 * - goalHeadroom 0.05: a partition with a goal is steered to PI = 1 ÷ 1.05, the goal + 5 %
 *   (receivers grow, donors give the rest away). Arithmetic, not a measurement: two saturated
 *   servers on one CPU, the important one with a goal of 80 % of its solo rate, would settle at
 *   84 % and 16 % of it (the other gets 80 % of the surplus; measured figures are in
 *   BENCHMARKS.md, goals-real).
 * - weightDeadband 0.15: a weight is rewritten only when it moves by 15 % or more (a
 *   100 ms CPU reading moves a 200m entitlement by ±20 %: 4 ms ticks), so steady traffic
 *   writes cpu.shares about once a second or less; a load step moves it far more at once.
 * - burst 1: a cap comes with a burst of a whole period's quota, so a capped partition
 *   that idled can answer a burst at once instead of waiting out the period.
 * - donorCapPeriodMs DONOR_CAP_PERIOD_MS: a goal partition that meets its goal with room while
 *   a less important one wants CPU is capped at what its goal needs in CFS periods this long,
 *   so the two run in long slices instead of interleaving (donor-cap.ts says why and what was
 *   measured); 0 turns the donor cap off.
 * - donorCapMargin DONOR_CAP_MARGIN_FRACTION (1 %): the donor cap starts at goal ÷ velocity ×
 *   1.01 and is trimmed by the measured served ÷ goal toward goal × 1.01 instead of resting at
 *   goal ÷ velocity × 1.05 (there the
 *   capped donor served 1.04× its goal, and each 1 % of its goal above it was 4 % of the surplus
 *   the partition below did not get); donor-cap.ts donorCapSetpoint. 0.05 (= goalHeadroom) or
 *   more: the untrimmed cap.
 * - suppressBatchAfterCycles 10 / releaseBatchAfterCycles 10: batch is capped at its guarantee
 *   once a network partition has been constrained 10 cycles in a row (1 s at 100 ms) with
 *   weights and the idle class alone, and uncapped after 10 calm cycles. Shorter triggers fired
 *   on brief delay spikes in the simulator's hog scenario (61 of 300 cycles at 3) and cost the
 *   hog 14 % of its CPU with no latency gained.
 */
export const POLICY_KNOBS = {
  headroom: {
    field: "headroomFraction",
    default: 0.2,
    rule: { min: 0, max: 5 },
    unit: "fraction",
    description: "extra above computed need",
  },
  probeFactor: {
    field: "probeFactor",
    default: 1.5,
    rule: { min: 1, max: 10 },
    unit: "multiplier",
    description: "growth per cycle of a congested partition whose demand is unknown",
  },
  deadband: {
    field: "deadbandFraction",
    default: 0.01,
    rule: { min: 0, max: 0.5 },
    unit: "fraction",
    description: "no change smaller than this fraction of capacity (at most 50m)",
  },
  maxShrinkPerCycle: {
    field: "maxShrinkFractionPerCycle",
    default: 0.1,
    rule: { above: 0, max: 1 },
    unit: "fraction",
    description: "what a partition needed shrinks by at most this fraction a cycle",
  },
  smoothingUp: {
    field: "smoothingUp",
    default: 0.7,
    rule: { above: 0, max: 1 },
    unit: "fraction",
    description: "EWMA weight of new demand when a congested partition's demand rises",
  },
  smoothingDown: {
    field: "smoothingDown",
    default: 0.2,
    rule: { above: 0, max: 1 },
    unit: "fraction",
    description: "EWMA weight of new demand when it falls, and when an uncongested one's rises",
  },
  velocitySmoothing: {
    field: "velocitySmoothing",
    default: 0.3,
    rule: { above: 0, max: 1 },
    unit: "fraction",
    description: "EWMA weight of a new velocity sample",
  },
  throttledThreshold: {
    field: "throttledThreshold",
    default: 0.05,
    rule: { min: 0, max: 1 },
    unit: "fraction",
    description: "throttled fraction of CFS periods that counts as constrained",
  },
  cpuDelayThreshold: {
    field: "cpuDelayThreshold",
    default: 0.5,
    rule: { above: 0, max: 1 },
    unit: "fraction",
    description: "CPU delay (waiting ÷ (waiting + running)) that counts as constrained",
  },
  goalHeadroom: {
    field: "goalHeadroomFraction",
    default: 0.05,
    rule: { min: 0, max: 1 },
    unit: "fraction",
    description:
      "a partition with a goal is steered to served = goal × (1 + this): receivers grow, donors give the rest away",
  },
  goalCycles: {
    field: "goalCycleFraction",
    default: 0,
    rule: { min: 0, max: 0.999 },
    unit: "fraction",
    description:
      "0: a goal is met on average (goal × (1 + goalHeadroom)); else the share of cycles in which a goal partition must serve at least its goal (0.99 = 99 %), with a margin learnt from its own readings and no donor cap",
  },
  openLoopGoalCycles: {
    field: "openLoopGoalCycleFraction",
    default: OPEN_LOOP_GOAL_CYCLE_SHARE,
    rule: { min: 0, max: 0.999 },
    unit: "fraction",
    description:
      "with goalCycles 0: the share of cycles in which an open-loop goal partition (its arrivals were dropped when it fell behind) must serve its goal, with a learnt margin and no donor cap; the others stay on average; 0 = every goal on average",
  },
  donorCapPeriodMs: {
    field: "donorCapPeriodMs",
    default: DONOR_CAP_PERIOD_MS,
    rule: { min: 0, max: 1000, integer: true },
    unit: "milliseconds",
    description:
      "CFS period of a goal donor's cap while a less important partition wants CPU (long slices; 0 = no donor cap)",
  },
  donorCapMargin: {
    field: "donorCapMarginFraction",
    default: DONOR_CAP_MARGIN_FRACTION,
    rule: { min: 0, max: 1 },
    unit: "fraction",
    description:
      "a capped goal donor's cap is trimmed (closed loop) so it serves goal × (1 + this); at goalHeadroom or more, no trim",
  },
  weightDeadband: {
    field: "weightDeadbandFraction",
    default: 0.15,
    rule: { min: 0, max: 1 },
    unit: "fraction",
    description: "rewrite a weight only when it moves by this fraction or more",
  },
  burst: {
    field: "burstFraction",
    default: 1,
    rule: { min: 0, max: 1 },
    unit: "fraction",
    description: "CFS burst a cap comes with, as a fraction of the cap (kernel: at most 1)",
  },
  suppressBatchAfterCycles: {
    field: "suppressBatchAfterCycles",
    default: 10,
    rule: { min: 0, max: 1000, integer: true },
    unit: "cycles",
    description: "cap batch after a network partition is congested this many cycles (0 = never)",
  },
  releaseBatchAfterCycles: {
    field: "releaseBatchAfterCycles",
    default: 10,
    rule: { min: 1, max: 10_000, integer: true },
    unit: "cycles",
    description: "uncap batch after this many calm cycles",
  },
  leftover: {
    field: "leftover",
    default: "batch-first",
    rule: { oneOf: ["share", "batch-first", "idle"] },
    unit: "choice",
    description:
      "spare CPU to batch and constrained partitions first, shared by weight, or kept idle",
  },
} as const satisfies Record<string, KnobDeclaration>;

/** A knob's key under `policy:` in the config. */
export type KnobKey = keyof typeof POLICY_KNOBS;

/** The knobs as the config spells them: `policy:` after defaults are filled in. */
export type KnobSettings = {
  -readonly [K in KnobKey]: PolicyKnobs[(typeof POLICY_KNOBS)[K]["field"]];
};

export const KNOB_KEYS = Object.keys(POLICY_KNOBS) as KnobKey[];

// Every tunable field is declared (a missing one fails the type check here).
type Declared = (typeof POLICY_KNOBS)[KnobKey]["field"];
const everyFieldDeclared: [Exclude<TunableField, Declared>] extends [never] ? true : false = true;
void everyFieldDeclared;

/** Every knob at its default, in config spelling. */
export function defaultKnobSettings(): KnobSettings {
  const out: Record<string, unknown> = {};
  for (const key of KNOB_KEYS) out[key] = POLICY_KNOBS[key].default;
  return out as KnobSettings;
}

/** The policy's knobs for config settings on a machine with `capacityCpuMillis` to hand out. */
export function policyKnobsFrom(settings: KnobSettings, capacityCpuMillis: CpuMillis): PolicyKnobs {
  const out: Record<string, unknown> = { capacityCpuMillis };
  for (const key of KNOB_KEYS) out[POLICY_KNOBS[key].field] = settings[key];
  return out as unknown as PolicyKnobs;
}

/**
 * The same knobs as an object of one fixed shape. Knobs built key by key (`policyKnobsFrom`) or
 * spread from such an object are in V8's dictionary mode, and each `knobs.x` in a loop is then
 * a hash lookup through the generic load stub (the `Builtins_LoadIC` of a `perf` profile of the
 * step: about 5 % of its time). The step reads its own copy, made once per step.
 */
export function fixedShapeKnobs(k: PolicyKnobs): PolicyKnobs {
  return {
    capacityCpuMillis: k.capacityCpuMillis,
    headroomFraction: k.headroomFraction,
    probeFactor: k.probeFactor,
    deadbandFraction: k.deadbandFraction,
    maxShrinkFractionPerCycle: k.maxShrinkFractionPerCycle,
    smoothingUp: k.smoothingUp,
    smoothingDown: k.smoothingDown,
    velocitySmoothing: k.velocitySmoothing,
    throttledThreshold: k.throttledThreshold,
    cpuDelayThreshold: k.cpuDelayThreshold,
    goalHeadroomFraction: k.goalHeadroomFraction,
    goalCycleFraction: k.goalCycleFraction,
    openLoopGoalCycleFraction: k.openLoopGoalCycleFraction,
    donorCapPeriodMs: k.donorCapPeriodMs,
    donorCapMarginFraction: k.donorCapMarginFraction,
    weightDeadbandFraction: k.weightDeadbandFraction,
    burstFraction: k.burstFraction,
    suppressBatchAfterCycles: k.suppressBatchAfterCycles,
    releaseBatchAfterCycles: k.releaseBatchAfterCycles,
    leftover: k.leftover,
  };
}

/** The defaults for a machine with `capacityCpuMillis` to hand out (managed CPUs minus reserve). */
export function defaultPolicyKnobs(capacityCpuMillis: CpuMillis): PolicyKnobs {
  return policyKnobsFrom(defaultKnobSettings(), capacityCpuMillis);
}
