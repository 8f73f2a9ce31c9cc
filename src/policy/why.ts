// The `why` of a weir decision: one plain sentence with the numbers, written from the step's
// reasons the first time someone reads it (decision.ts keeps the numbers; this file only
// formats them).
import type { Throughput } from "../core/model.ts";
import type { DecisionDetail, WeirDecision } from "./decision.ts";
import {
  type DemandAssessment,
  DONOR_FLOOR_FRACTION,
  GOAL_DONATE_STEP_FRACTION,
  GOAL_STEP_FRACTION,
  goalMinStepFraction,
} from "./demand.ts";
import { donorCapCpuMillis } from "./donor-cap.ts";
import { clamp, weightForAllocation } from "./rules.ts";
import type { PolicyKnobs } from "./types.ts";

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
      } else if (
        a.kind === "traffic" &&
        trafficNeed !== null &&
        trafficNeed <= a.probeFromCpuMillis
      ) {
        // the rule's catch-up window (demand.ts): traffic credited where a probe would have been
        parts.push(
          `${congestionText(tp, a)}, but it served ${pct(tp.servedPacketsPerSec / Math.max(1, tp.offeredPacketsPerSec))} of its offer on ${millis(a.usedCpuMillis)}: a catch-up after a stall, not a wrong estimate, so no probe; ${offeredAt} needs ${millis(trafficNeed)} (+${h} headroom)`,
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
      // a donor's claim says its own floor (DONOR_FLOOR_FRACTION of goal ÷ velocity)
      const floored =
        !a.goalReceiver &&
        !a.donor &&
        a.goalFloorCpuMillis !== null &&
        a.demandCpuMillis === a.goalFloorCpuMillis;
      if (a.donor && goal !== undefined) {
        const pi = d.performanceIndex;
        parts.push(
          `goal ${int(goal)} pps met (PI ${pi === null ? "?" : pi.toFixed(2)}), so it claims ${millis(a.demandCpuMillis)} (${a.goalMarginFraction !== undefined ? `last entitlement × PI + ${marginText(a.goalMarginFraction, k)}, at most −${pct(GOAL_DONATE_STEP_FRACTION)} a cycle, not under goal ÷ velocity + that margin` : a.goalFloorCpuMillis !== null && a.demandCpuMillis === a.goalFloorCpuMillis * DONOR_FLOOR_FRACTION ? `${pct(DONOR_FLOOR_FRACTION)} of goal ÷ velocity, its floor: last entitlement × PI + ${pct(k.goalHeadroomFraction)} is less` : `last entitlement × PI + ${pct(k.goalHeadroomFraction)}`}) and donates ${millis(a.undonatedDemandCpuMillis - a.demandCpuMillis)} of the ${millis(a.undonatedDemandCpuMillis)} its traffic claims`,
        );
      } else if (a.goalReceiver && goal !== undefined) {
        const pi = d.performanceIndex;
        parts.push(
          `goal ${int(goal)} pps ${pi !== null && pi > 1 ? "missed" : `met by less than its ${a.goalMarginFraction !== undefined ? marginText(a.goalMarginFraction, k) : pct(k.goalHeadroomFraction)} margin`} (PI ${pi === null ? "?" : pi.toFixed(2)}) while short of CPU, so it receives: ${millis(a.demandCpuMillis)} (last entitlement × PI + ${a.goalMarginFraction !== undefined ? pctFine(a.goalMarginFraction) : pct(k.goalHeadroomFraction)}${goalMinStepFraction(k) > 0 ? `, at least +${pct(goalMinStepFraction(k))}` : ""}, at most +${pct(GOAL_STEP_FRACTION)} a cycle)`,
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
      if (x.held)
        parts.push(
          `no throughput for staleAfterMs: held to its guarantee ${millis(x.minCpuMillis)}${prev > x.minCpuMillis + 0.5 ? ` (its previous ${millis(prev)})` : ""}`,
        );
      else if (prev > x.maxCpuMillis + 0.5)
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
      : weightText(
          d.cpuMillis,
          capacity,
          x.weightDivisor,
          d.context.importanceWeightRatio,
          x.weight,
          x.weightFloor,
        );
  switch (x.capCode) {
    case 1:
      return `${base}; capped at its max ${millis(x.maxCpuMillis)} (+${pct(k.burstFraction)} burst)`;
    case 2:
      return `${base}; capped at its entitlement (configured capped, +${pct(k.burstFraction)} burst)`;
    case 3:
      return `${base}; capped at its entitlement ${millis(d.cpuMillis)} while network partitions stay congested`;
    case 4:
      return `${base}; ${donorCapText(d, x)}, over ${int(k.donorCapPeriodMs)} ms CFS periods, no burst: the two run in long slices, not interleaved`;
    default:
      return `${base}; no cap`;
  }
}

/**
 * A goal donor's cap: what its goal needs (goal ÷ velocity + goalHeadroom), and where the trim
 * has it when it is below that ("goal met with PI 0.98 while …: donor cap trimmed to 612m …").
 */
function donorCapText(d: WeirDecision, x: DecisionDetail): string {
  const k = d.context.knobs;
  const goal = d.spec.goalPacketsPerSec;
  const v = d.velocityPacketsPerCpuSec;
  const pi = d.performanceIndex;
  const sp = x.donorSetpointCpuMillis;
  const open =
    goal !== undefined && v !== null && v > 0
      ? clamp(donorCapCpuMillis(goal, v, k.goalHeadroomFraction), x.minCpuMillis, x.maxCpuMillis)
      : null;
  const openText = `goal ÷ velocity + ${pct(k.goalHeadroomFraction)}`;
  if (sp === null || open === null || d.cpuMillis >= open)
    return `goal met with room while a less important partition wants CPU, so capped at what its goal needs, ${millis(d.cpuMillis)} (${openText})`;
  return `goal met with PI ${pi === null ? "?" : pi.toFixed(2)} while a less important partition wants CPU: donor cap trimmed to ${millis(d.cpuMillis)} (${openText} is ${millis(open)}; the trim steers it to serve goal + ${pctFine(k.donorCapMarginFraction)}; two cycles in a row more than 10 % under the goal undo it)`;
}

/** A margin by cycles: "12.3 %, its margin for 99 % of cycles". */
const marginText = (
  margin: number,
  k: Pick<PolicyKnobs, "goalCycleFraction" | "openLoopGoalCycleFraction">,
): string =>
  k.goalCycleFraction > 0
    ? `${pctFine(margin)}, its margin for ${pctFine(k.goalCycleFraction)} of cycles`
    : `${pctFine(margin)}, its margin for ${pctFine(k.openLoopGoalCycleFraction)} of cycles: open loop, it drops what it does not serve`;

/** 0.015 → "1.5 %", 0.01 → "1 %". */
const pctFine = (fraction: number): string => `${Math.round(fraction * 1000) / 10} %`;

/**
 * "weight 1,250 (its share of 2,000m ÷ 2: 1 more important level present, each weighing 2× the
 * one below), …"; with the light-partition floor above its share, "weight 5,388 (the heaviest
 * at its importance or below; its own share, 2,353 (its share of 1,700m), is less, but …)".
 */
function weightText(
  cpuMillis: number,
  capacity: number,
  divisor: number,
  ratio: number,
  directed: number,
  floor: number | null,
): string {
  const w = weightForAllocation(cpuMillis, capacity, divisor);
  const levels = Math.round(Math.log(divisor) / Math.log(ratio));
  const share =
    divisor > 1
      ? `its share of ${millis(capacity)} ÷ ${int(divisor)}: ${levels} more important level${levels === 1 ? "" : "s"} present, each weighing ${ratio}× the one below`
      : `its share of ${millis(capacity)}`;
  const floored = floor !== null && floor > w;
  const target = floored ? floor : w;
  const reason = floored
    ? `the heaviest at its importance or below; its own share, ${int(w)} (${share}), is less, but it is not constrained, so it takes only what it uses and need not wait behind heavier partitions when it wakes`
    : share;
  if (Number.isNaN(directed) || directed === target)
    return `weight ${int(target)} (${reason}), so it may use any idle CPU`;
  return `weight stays ${int(directed)}: ${int(target)} (${reason}) is inside the weight dead-band, so it may use any idle CPU`;
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
