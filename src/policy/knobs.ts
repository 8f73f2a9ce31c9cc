// Default knobs of weir's control law. The prose explaining each one is in README.md.
import type { CpuMillis } from "../core/units.ts";
import type { PolicyKnobs } from "./types.ts";

/**
 * The defaults for a machine with `capacityCpuMillis` to hand out (managed CPUs minus reserve).
 *
 * - headroom 0.2: a partition is given 20 % more than its traffic or use needs, so a burst
 *   inside one cycle does not throttle it before the next cycle sees it.
 * - probeFactor 1.5: a congested partition whose real demand is unknown gets +50 % a cycle
 *   (from 100m to 1,000m in 6 cycles, 0.6 s at the default 100 ms cycle).
 * - deadband 0.01: changes smaller than 1 % of capacity are not made (20m on 2 CPUs).
 * - maxShrinkFractionPerCycle 0.1: what a partition needed may shrink by 10 % a cycle at most.
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
 * - goalHeadroomFraction 0.05: a partition with a goal is steered to PI = 1 ÷ 1.05, the goal + 5 %
 *   (receivers grow, donors give the rest away). Arithmetic, not a measurement: two saturated
 *   servers on one CPU, the important one with a goal of 80 % of its solo rate, would settle at
 *   84 % and 16 % of it (the other gets 80 % of the surplus; measured figures are in
 *   BENCHMARKS.md, goals-real).
 * - weightDeadbandFraction 0.15: a weight is rewritten only when it moves by 15 % or more (a
 *   100 ms CPU reading moves a 200m entitlement by ±20 %: 4 ms ticks), so steady traffic
 *   writes cpu.shares about once a second or less; a load step moves it far more at once.
 * - burstFraction 1: a cap comes with a burst of a whole period's quota, so a capped partition
 *   that idled can answer a burst at once instead of waiting out the period.
 * - suppressBatchAfterCycles 10 / releaseBatchAfterCycles 10: batch is capped at its guarantee
 *   once a network partition has been constrained 10 cycles in a row (1 s at 100 ms) with
 *   weights and the idle class alone, and uncapped after 10 calm cycles. Shorter triggers fired
 *   on brief delay spikes in the simulator's hog scenario (61 of 300 cycles at 3) and cost the
 *   hog 14 % of its CPU with no latency gained.
 */
export function defaultPolicyKnobs(capacityCpuMillis: CpuMillis): PolicyKnobs {
  return {
    capacityCpuMillis,
    headroomFraction: 0.2,
    probeFactor: 1.5,
    deadbandFraction: 0.01,
    maxShrinkFractionPerCycle: 0.1,
    smoothingUp: 0.7,
    smoothingDown: 0.2,
    velocitySmoothing: 0.3,
    throttledThreshold: 0.05,
    cpuDelayThreshold: 0.5,
    weightDeadbandFraction: 0.15,
    goalHeadroomFraction: 0.05,
    burstFraction: 1,
    suppressBatchAfterCycles: 10,
    releaseBatchAfterCycles: 10,
    leftover: "batch-first",
  };
}
