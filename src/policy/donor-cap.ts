// The donor cap: a goal partition that meets its goal with room while a less important partition
// wants CPU is capped at what its goal needs, over long CFS periods, so the two run in long
// slices instead of interleaving. Pure; weir.ts runs `donorCaps` once per step.
//
// Why: under weights alone a saturated goal partition and a less important saturated one on the
// same CPU interleave in short slices (the goal partition preempts the other at every wake-up);
// the pair loses efficiency to the switches (real testbed, goals-real: the less important one
// served 10.0k replies per CPU-second against the goal partition's 12.6k, and got 0.62× of the
// surplus beside it). Capping the goal partition at its goal's share in long periods lets each
// run in one block per period (the bench's hand-set "long slices" row: 0.98× of the surplus).
// WLM does the same to feed discretionary work: it caps work that over-achieves its goal.
// The cost is the donor's latency: once its quota is spent it waits up to the rest of the period.
//
// The cap is closed-loop: goal ÷ velocity × (1 + goalHeadroom) is where it starts and the most
// it may be; then each window its set point is trimmed by the measured served ÷ goal toward
// goal × (1 + donorCapMargin) (donorCapSetpoint). Open loop, the capped donor served 1.04× its
// goal (goals-real): the 5 % margin itself, and every 1 % of the goal it serves above it is
// 4 % of the surplus the partition below does not get (the goal is 80 % of the solo rate).
import type { DemandAssessment } from "./demand.ts";
import { clamp, goalWeightBandFraction } from "./rules.ts";
import type { PolicyKnobs } from "./types.ts";

/**
 * Default CFS period of a donor cap, ms (the `donorCapPeriodMs` knob). Chosen by measurement on
 * goals-real's setup (docs/control-law.md): the shortest period tried (100, 200, 500 ms) at which
 * the less important partition got at least 0.7× of the surplus — 100 ms, the kernel's default
 * period, so the cap itself, not a longer period, did it there: 4 interleaved repetitions, B
 * 0.91× [0.24–0.97] of the surplus at 100 ms, 0.78× at 200, 0.67× at 500, 0.80× with no donor
 * cap (load 4.7 → 3.5); `weir bench goals-real --reps 5` (load 3.9 → 4.9) ranked them the same
 * way, though none reached 0.7× there: 0.60× at 100 ms, 0.41× at 200, 0.43× at 500, 0.48× with no
 * donor cap. A longer period makes longer slices and makes the donor wait longer once its quota
 * is spent.
 */
export const DONOR_CAP_PERIOD_MS = 100;

/**
 * Default margin a capped donor is steered to (the `donorCapMarginFraction` knob): served = goal
 * × 1.01. See donorCapSetpoint.
 */
export const DONOR_CAP_MARGIN_FRACTION = 0.01;

/**
 * Each window a capped donor's set point moves by this fraction of its served ÷ goal error
 * (× the set point): an integral controller with a time constant of about 1 ÷ gain windows
 * (2 s at 100 ms cycles). Why so slow: one 100 ms window of a capped server on the real testbed
 * reads its rate with a standard deviation of 5–8 % (goals-real's setup: 20–40 % of windows
 * under the goal while the run averaged 1.04× it), and every quota write the set point causes
 * refills the period's runtime (about one quota of extra CPU for the donor, taken from the
 * partition below). At a gain of 0.2 the noise moved the cap nearly every window (22–31 quota
 * writes in 5.5 s against 0–3 untrimmed) and the donor served 1.07× its goal. The start
 * (donorCapStartCpuMillis) is already near the target, so the trim has little to correct.
 */
export const DONOR_TRIM_GAIN = 0.05;

/**
 * A reached trimmed cap is kept while its set point stays within this fraction of it: each quota
 * write refills the period's runtime, and on the real testbed a cap rewritten every few windows
 * let the donor use 10–15 % more than its cap (used 0.75–0.83 cores under caps of 677–729m).
 * The set point integrates on while the cap is held, so the cap moves in steps of at least this
 * and spends the time at each step that puts the donor's rate, on average, at its target.
 */
export const DONOR_TRIM_HOLD_FRACTION = 0.025;

/**
 * The trim never takes the cap further below goal ÷ velocity × (1 + goalHeadroom) than this
 * fraction of it (anti-windup: a set point that could fall without bound would take as many
 * windows to come back).
 */
export const DONOR_TRIM_MAX_FRACTION = 0.1;

/** The state's flag of a partition whose donor cap is in force (state.ts flags, bit 2). */
export const FLAG_DONOR_CAP = 4;
/** Bits 3..6 of the flags: windows in a row the donor cap did not fit (see donorCaps). */
const MISFIT_SHIFT = 3;
const MISFIT_MASK = 15;

/**
 * Bit 7 of the flags: the capped donor's entitlement reached its cap last step (the shrink limit
 * of the partitions below can hold it short for a few cycles after the cap is set).
 */
export const FLAG_DONOR_CAP_REACHED = 128;

/** Windows in a row the cap did not fit, as the state's flags carry them. */
export const donorCapMisfits = (flags: number): number => (flags >> MISFIT_SHIFT) & MISFIT_MASK;

/** The flags of a capped donor whose cap has not fitted `misfitWindows` windows in a row. */
export const donorCapFlags = (misfitWindows: number, reached = false): number =>
  FLAG_DONOR_CAP |
  (clamp(Math.floor(misfitWindows) || 0, 0, MISFIT_MASK) << MISFIT_SHIFT) |
  (reached ? FLAG_DONOR_CAP_REACHED : 0);

/**
 * What a goal needs, capped: goal ÷ velocity × (1 + goalHeadroom), whole millicores rounded up.
 * The margin is the goal controller's own (the goal + 5 % it steers to), so the donor serves
 * goal × 1.05 while capped whatever the velocity, as long as it gets its quota.
 *   goal 9,000 pps at 12,000 pkt/cpu-s: 750m × 1.05 = 787.5 → 788m.
 */
export function donorCapCpuMillis(
  goalPacketsPerSec: number,
  velocityPacketsPerCpuSec: number,
  goalHeadroomFraction: number,
): number {
  return Math.ceil(
    (goalPacketsPerSec / velocityPacketsPerCpuSec) * 1000 * (1 + goalHeadroomFraction) - 1e-9,
  );
}

/**
 * Where a donor cap's set point starts when the cap is set: goal ÷ velocity × (1 + margin),
 * millicores (not rounded) — the velocity's estimate of the rate the trim steers to; the trim
 * corrects what the estimate gets wrong. Untrimmed (margin ≥ goalHeadroom): goal ÷ velocity ×
 * (1 + goalHeadroom), the cap as it was.
 *   goal 9,000 pps at 12,000 pkt/cpu-s, margin 1 %: 750m × 1.01 = 757.5m.
 */
export function donorCapStartCpuMillis(
  goalPacketsPerSec: number,
  velocityPacketsPerCpuSec: number,
  knobs: Pick<PolicyKnobs, "donorCapMarginFraction" | "goalHeadroomFraction">,
): number {
  const margin = Math.min(knobs.donorCapMarginFraction, knobs.goalHeadroomFraction);
  return (goalPacketsPerSec / velocityPacketsPerCpuSec) * 1000 * (1 + margin);
}

/**
 * The trimmed set point of a capped donor's cap, millicores (not rounded; the cap is its ceiling
 * within [min, max]). `open` is the untrimmed cap, goal ÷ velocity × (1 + goalHeadroom)
 * (donorCapCpuMillis): the most the set point may be. Each window in which the cap was in force
 * and reached and its traffic filled it (`integrate`: its entitlement was the cap, so the
 * window's rate is the cap's; a window under 0.91× the goal counts too), the set point moves by DONOR_TRIM_GAIN × (served ÷ goal − (1 + margin)) of itself:
 * down while the donor serves more than goal × (1 + margin), up while less; it stays within
 * DONOR_TRIM_MAX_FRACTION below `open` (anti-windup). A miss beyond a noisy reading
 * (`missesGoal`: PI above GOAL_MISS_YIELD_PI, 1.1, while short of CPU, in this window and the
 * last — the miss the levels below yield to) puts it back at `open` in the same step; a smaller
 * or single-window shortfall raises it through the error (one 100 ms reading of a server at
 * goal + 4 % is under its goal one window in four, and under 0.91× it one in ten: the trim
 * averages such windows with the rest; left out, they biased the average up). Untrimmed
 * (margin ≥ goalHeadroom), or no set point yet (NaN), or no served ratio: `open`.
 * The set point is not carried by the velocity's moves (DonorCapRows.prevSetpoint says why);
 * `open`, and the floor under it, follow the velocity.
 *   open 788m, set point 760m, served 1.05× goal, margin 1 %: 760 × (1 − 0.05 × 0.04) = 758.48m.
 *   then served 0.99× goal: 758.48 × (1 − 0.05 × −0.02) = 759.23848m.
 *   missesGoal (served 0.85×): 788m.
 */
export function donorCapSetpoint(
  setpoint: number,
  open: number,
  servedOverGoal: number,
  integrate: boolean,
  missesGoal: boolean,
  knobs: Pick<PolicyKnobs, "donorCapMarginFraction" | "goalHeadroomFraction">,
): number {
  const margin = knobs.donorCapMarginFraction;
  if (!(margin < knobs.goalHeadroomFraction)) return open;
  if (missesGoal || Number.isNaN(setpoint) || !(servedOverGoal >= 0)) return open;
  const s = integrate
    ? setpoint * (1 - DONOR_TRIM_GAIN * (servedOverGoal - (1 + margin)))
    : setpoint;
  return clamp(s, open * (1 - DONOR_TRIM_MAX_FRACTION), open);
}

/**
 * How many windows in a row the cap may not fit before it is lifted: one cap period's worth of
 * windows, plus one (at most 15). A 100 ms window inside a 500 ms period sees the donor run
 * its whole window, or be throttled for most of it: a single window's reading of a capped donor
 * swings from 0 to 1.25× its average, so one or two low windows say nothing.
 *   500 ms period, 100 ms windows → 6; 100 ms → 2.
 */
export function donorCapPatienceWindows(periodMs: number, windowMs: number): number {
  const w = windowMs > 0 ? windowMs : periodMs;
  return Math.min(MISFIT_MASK, Math.ceil(periodMs / w) + 1);
}

/**
 * A less important partition wants CPU: it served traffic this window and was throttled,
 * dropping (while using at least half its allocation) or waiting for a CPU at least
 * `cpuDelayThreshold` of the time it was runnable — whatever it uses of its entitlement (a
 * saturated server beside the donor uses what the donor leaves it). Batch does not count: it
 * has no traffic or goal to serve, and takes what is left anyway.
 */
export function wantsCpu(
  a: Pick<DemandAssessment, "kind" | "throttled" | "dropping">,
  /** NaN, null or undefined = unknown. */
  cpuDelayFraction: number | null | undefined,
  knobs: Pick<PolicyKnobs, "cpuDelayThreshold">,
): boolean {
  return wantsCpuFrom(
    a.kind === "idle",
    a.throttled,
    a.dropping,
    cpuDelayFraction ?? Number.NaN,
    knobs.cpuDelayThreshold,
  );
}

/** wantsCpu on its parts (the step reads them from the demand rule's columns); NaN delay = unknown. */
export const wantsCpuFrom = (
  idle: boolean,
  throttled: boolean,
  dropping: boolean,
  cpuDelayFraction: number,
  cpuDelayThreshold: number,
): boolean => !idle && (throttled || dropping || cpuDelayFraction >= cpuDelayThreshold);

export interface DonorCapRows {
  /** Per row: 1 = a network goal partition with data and a velocity, whose window was read. */
  eligible: Uint8Array;
  /** This window's assessment, per row: donor (PI × 1.05 ≤ 1 while its traffic claims more). */
  donor: Uint8Array;
  /** missesGoal (1 = this window, 2 = this and the last), and use + headroom, per row. */
  missesGoal: Uint8Array;
  useNeed: Float64Array;
  goal: Float64Array;
  velocity: Float64Array;
  importance: Uint8Array;
  min: Float64Array;
  max: Float64Array;
  windowMs: Float64Array;
  /** This window's served packets/s (the trim's measurement). */
  served: Float64Array;
  prevCpu: Float64Array;
  prevFlags: Uint8Array;
  /**
   * Last step's set point (donorCapSetpoint; NaN = none). It is not carried by the velocity's
   * moves: one 100 ms velocity reading varied with a standard deviation of 4.5–8 % within a
   * run (goals-real's setup), and carried each window (as a first version did) it moved the set
   * point by 1.5–2.7 % a window (goals-real's per-cycle traces), past the 2.5 % hold 2–4 times a
   * second: 18–35 quota writes in 81 windows, each refilling the period (the donor used 1.07×
   * its cap the window after a write, 0.98× otherwise; 1.11× its cap over a run with 35). The
   * untrimmed cap (goal ÷ velocity + goalHeadroom) and the anti-windup floor under it still
   * follow the velocity, and the trim follows a drift that lasts.
   */
  prevSetpoint: Float64Array;
  /**
   * The rows with `eligible` 1, in row order, when the caller has them (the step collects
   * them in its demand pass): only these `rowCount` rows are visited. Absent: every row.
   */
  rows?: Int32Array;
  rowCount?: number;
  /**
   * Per row, this step's goal margin by cycles (> 0: held per cycle, so no donor cap — an
   * open-loop goal partition, demand.ts OPEN_LOOP_GOAL_CYCLE_SHARE); absent: none.
   */
  goalMargin?: Float64Array;
}

/** Where a capped donor's demand goes: the step's arrays. */
export interface DonorCapOut {
  demand: Float64Array;
  target: Float64Array;
  leftoverEligible: Uint8Array;
  prevNeed: Float64Array;
  flags: Uint8Array;
  /** 1 = capped this step (express writes the cap code). */
  capped: Uint8Array;
  /** The set point of each capped row (donorCapSetpoint); rows not capped are left as they are (NaN). */
  setpoint: Float64Array;
}

/**
 * The donor caps of one step. A goal partition is capped when, this window, it is a donor and a
 * network partition less important than it wants CPU (`leastImportantWanting`: the largest
 * importance number among those that want CPU, 0 = none); it stays capped while one still does
 * and the cap has not misfitted for `donorCapPatienceWindows` windows in a row — a window
 * misfits when the goal is missed while short of CPU (`missesGoal`), or when the partition's
 * use + headroom is below the cap (its traffic fell: a cap it does not use would hold
 * entitlement the levels below could weigh with); else the cap is lifted (and the period
 * returns to the cgroup's own). While capped its demand is the cap, and
 * its entitlement (so its weight) with it. The cap is its set point (donorCapSetpoint: trimmed
 * each window by served ÷ goal, within 10 % under goal ÷ velocity + goalHeadroom), rounded up;
 * the dead-band holds back a smaller move, and each quota write refills the period's runtime,
 * which the trim measures like any other CPU the donor gets. Untrimmed (donorCapMargin ≥
 * goalHeadroom) the cap is goal ÷ velocity + goalHeadroom and moves only when that moves by more
 * than the goal's weight band (5 %) from the cap in force (once the entitlement has reached it).
 * Not with goals met in a share of cycles (goalCycleFraction > 0), nor on a row held per cycle
 * (an open-loop goal partition: DonorCapRows.goalMargin). Returns how many partitions are capped.
 */
export function donorCaps(
  n: number,
  r: DonorCapRows,
  leastImportantWanting: number,
  knobs: Pick<
    PolicyKnobs,
    | "donorCapPeriodMs"
    | "goalCycleFraction"
    | "goalHeadroomFraction"
    | "donorCapMarginFraction"
    | "weightDeadbandFraction"
  >,
  out: DonorCapOut,
): number {
  // Goals met in a share of cycles (goalCycleFraction > 0) have no donor cap: a capped
  // server's 100 ms readings are too noisy for it (demand.ts GOAL_MARGIN_GAIN; on the real
  // testbed, conservation-real's overload, the capped donor met its goal in 93 % [90–95] of
  // cycles with the learnt margin, 100 % [98–100] held by its weight alone).
  if (!(knobs.donorCapPeriodMs > 0) || knobs.goalCycleFraction > 0) return 0;
  const band = goalWeightBandFraction(knobs);
  const trimming = knobs.donorCapMarginFraction < knobs.goalHeadroomFraction;
  let count = 0;
  const rows = r.rows;
  const m = rows ? (r.rowCount ?? 0) : n;
  for (let k = 0; k < m; k++) {
    const i = rows ? rows[k]! : k;
    if (r.eligible[i] !== 1) continue;
    if (r.goalMargin !== undefined && r.goalMargin[i]! > 0) continue;
    const imp = r.importance[i]!;
    if (!(leastImportantWanting > imp)) continue;
    const was = (r.prevFlags[i]! & FLAG_DONOR_CAP) !== 0;
    if (!was && r.donor[i] !== 1) continue;
    const open = clamp(
      donorCapCpuMillis(r.goal[i]!, r.velocity[i]!, knobs.goalHeadroomFraction),
      r.min[i]!,
      r.max[i]!,
    );
    let cap = open;
    let sp = Number.NaN;
    const prev = r.prevCpu[i]!;
    const reached = (r.prevFlags[i]! & FLAG_DONOR_CAP_REACHED) !== 0;
    if (trimming) {
      // Last step's set point, trimmed by what the donor served; not carried by the velocity's
      // moves (see DonorCapRows.prevSetpoint). Released only on a miss beyond noise two
      // windows in a row (missesGoal = 2).
      const misses = r.missesGoal[i] === 2;
      const fitted = reached && r.useNeed[i]! >= prev;
      sp = was
        ? donorCapSetpoint(
            r.prevSetpoint[i]!,
            open,
            r.served[i]! / r.goal[i]!,
            fitted,
            misses,
            knobs,
          )
        : clamp(donorCapStartCpuMillis(r.goal[i]!, r.velocity[i]!, knobs), r.min[i]!, open);
      cap = clamp(Math.ceil(sp - 1e-9), r.min[i]!, r.max[i]!);
      if (reached && !misses && Math.abs(cap - prev) <= DONOR_TRIM_HOLD_FRACTION * prev) cap = prev;
    } else if (reached && Math.abs(cap - prev) <= band * prev) cap = prev;
    let misfits = 0;
    if (was) {
      misfits =
        r.missesGoal[i] !== 0 || r.useNeed[i]! < cap ? donorCapMisfits(r.prevFlags[i]!) + 1 : 0;
      if (misfits >= donorCapPatienceWindows(knobs.donorCapPeriodMs, r.windowMs[i]!)) continue;
    }
    out.demand[i] = cap;
    out.target[i] = cap;
    out.leftoverEligible[i] = 0;
    out.prevNeed[i] = cap;
    out.flags[i]! |= donorCapFlags(misfits);
    out.setpoint[i] = sp;
    out.capped[i] = 1;
    count++;
  }
  return count;
}

/**
 * After the post-processors: a capped donor whose entitlement (its cap) is the cap it was given,
 * within the dead-band (which holds a smaller change back), has reached it; from the next step
 * on, its cap holds within the band.
 */
export function markDonorCapsReached(
  n: number,
  capped: Uint8Array,
  target: Float64Array,
  final: Float64Array,
  deadbandCpuMillis: number,
  flags: Uint8Array,
  /** Only these rows (the first `rowCount`), when given: every capped row is among them. */
  rows?: Int32Array,
  rowCount = 0,
): void {
  const m = rows ? rowCount : n;
  for (let k = 0; k < m; k++) {
    const i = rows ? rows[k]! : k;
    if (capped[i] === 1 && Math.abs(final[i]! - target[i]!) <= deadbandCpuMillis + 1)
      flags[i]! |= FLAG_DONOR_CAP_REACHED;
  }
}
