// weir's workload policy: the control law of the top-level README.md ("How weir decides") as one
// pure step.
//   velocity → demand (confirmed by congestion, smoothed, goal floor) → allocation (mins,
//   held, tiers, left-over) → post-processors (dead-band, shrink limit, bounds, whole millis)
//   → directives + decisions + state.
// No I/O, no clock (time comes in as input.nowMs), no node:* imports. See README.md.
//
// Speed (10,000 partitions in ≤ 1 ms): per-partition numbers live in typed arrays, one
// arena per step for what the output keeps (decisions read it lazily) and scratch reused
// between steps for what it does not; no per-partition objects besides the directive and the
// decision the contract asks for. Reusing scratch is invisible from outside: the step reads
// only its arguments and returns the same output for the same input.
// Over 400 lines on purpose: step() is one pass over a dozen aligned typed arrays (assess,
// allocate, post-process, express, decide); splitting it would pass those arrays between
// files. What is not the pass lives beside it: express.ts (directives), state.ts (the packed
// state), batch.ts (batch suppression), decision.ts (the lazy why).
import type { Directive, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import {
  type AllocationProblem,
  type AllocationScratch,
  allocate,
  createAllocationScratch,
  Mode,
} from "./allocate.ts";
import { nextBatchSuppression } from "./batch.ts";
import { packBits, type StepReasons, WeirDecision } from "./decision.ts";
import {
  assessNetworkDemand,
  emptyAssessment,
  performanceIndex,
  smoothVelocity,
} from "./demand.ts";
import { capCodeOf, express, weightBands } from "./express.ts";
import {
  type AllocationFrame,
  defaultPostProcessors,
  type PostProcessor,
  runPostProcessors,
} from "./postprocess.ts";
import {
  clamp,
  demandTarget,
  goalBase,
  hasGoal,
  importanceOf,
  maxOf,
  minOf,
  minProbeStep,
  protectedNeed,
  Source,
  weightDivisors,
  yieldingDemand,
} from "./rules.ts";
import { FLAG_MISSED_GOAL, FLAG_RISING, packedState, readPrevious } from "./state.ts";
import type { Policy, PolicyInput, PolicyKnobs, PolicyOutput, PolicyState } from "./types.ts";

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

/** Buffers a step needs only while it runs; grown to the largest partition count seen. */
class Scratch {
  size = -1;
  f64: Float64Array[] = [];
  u8: Uint8Array[] = [];
  alloc: AllocationScratch = createAllocationScratch(1);

  /** `f` Float64Arrays and `u` Uint8Arrays of length n (views into reused buffers). */
  fit(n: number, f: number, u: number): { f64: Float64Array[]; u8: Uint8Array[] } {
    if (n > this.size || this.f64.length !== f || this.u8.length !== u) {
      this.f64 = Array.from({ length: f }, () => new Float64Array(n));
      this.u8 = Array.from({ length: u }, () => new Uint8Array(n));
      this.alloc = createAllocationScratch(n);
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
}

export function createWeirPolicy(opts: WeirPolicyOptions = {}): Policy {
  const postProcessors = opts.postProcessors ?? defaultPostProcessors;
  const scratch = new Scratch();
  return {
    name: "weir",
    initialState: (): PolicyState => ({ partitions: {} }),
    step: (input, state) => step(input, state, postProcessors, scratch),
  };
}

/** weir's control law with the default post-processors. */
export const weirPolicy: Policy = createWeirPolicy();

function step(
  input: PolicyInput,
  state: PolicyState,
  postProcessors: readonly PostProcessor[],
  sc: Scratch,
): PolicyOutput {
  const { knobs, specs } = input;
  const n = specs.length;
  const capacity = usableCapacity(knobs.capacityCpuMillis);
  const deadband = deadbandCpuMillis(knobs);
  const probeStep = minProbeStep(deadband);
  const shareLeftover = knobs.leftover !== "idle";
  const canUseFirst = knobs.leftover === "batch-first";

  // What the output keeps (the next state's arrays, the decisions' numbers and reasons), in
  // one buffer of each type; everything else is scratch.
  const fb = new Float64Array(n * 12);
  const ub = new Uint8Array(n * 4);
  const f = (k: number): Float64Array => fb.subarray(k * n, (k + 1) * n);
  const u = (k: number): Uint8Array => ub.subarray(k * n, (k + 1) * n);
  const final = f(0);
  const demand = f(1);
  const velocity = f(2);
  const prevDemand = f(3);
  const ideal = f(4);
  const leftover = f(5);
  const effectiveMin = f(6);
  const prevWeight = f(7);
  const weights = f(8);
  const shownDemand = f(9);
  const prevCpu = f(10);
  const pis = f(11);
  const bits = u(0);
  const prevFlags = u(1);
  const flags = u(2);
  const capCode = u(3);
  const buf = sc.fit(n, 9, 7);
  const [prevVelocity, lo, hi, weight, target, prevNeed, post0, post1, useNeed] = buf.f64 as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const [source, importance, mode, eligible, receiver, marks, controlled] = buf.u8 as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  receiver.fill(0);
  controlled.fill(0);

  readPrevious(state, specs, prevCpu, prevDemand, prevVelocity, prevWeight, prevFlags);
  const divisors = weightDivisors(specs);
  const tps = alignThroughput(specs, input.throughput);
  const a = emptyAssessment();
  const ids: PartitionId[] = new Array(n);
  let receiverImportance = 6;
  /** Most important level where a goal is missed while short of CPU (DemandAssessment.missesGoal). */
  let yieldTo = 6;
  let congested = false;
  let anyBatch = false;

  for (let i = 0; i < n; i++) {
    const spec = specs[i]!;
    ids[i] = spec.id;
    const min = minOf(spec);
    const max = maxOf(spec);
    lo[i] = min;
    hi[i] = max;
    weight[i] = spec.weight;
    const imp = importanceOf(spec);
    importance[i] = imp;
    const pc = prevCpu[i]!;
    const pd = prevDemand[i]!;
    const hasPrev = !Number.isNaN(pc);
    const tp = tps[i]!;
    const v = smoothVelocity(
      nullIfNaN(prevVelocity[i]!),
      tp === null ? null : tp.rawVelocityPacketsPerCpuSec,
      knobs.velocitySmoothing,
    );
    velocity[i] = v === null ? Number.NaN : v;
    let src: number;
    if (spec.kind === "batch") {
      anyBatch = true;
      src = Source.batch;
      mode[i] = Mode.batch;
      target[i] = min;
      eligible[i] = 2; // can always use more: served first from the left-over
      demand[i] = max;
    } else if (tp !== null) {
      src = Source.network;
      assessNetworkDemand(
        tp,
        v,
        hasPrev ? pc : null,
        nullIfNaN(pd),
        spec.goalPacketsPerSec,
        knobs,
        probeStep,
        a,
        goalBase(prevWeight[i]!, hasPrev ? pc : null, capacity, divisors[imp]!),
        (prevFlags[i]! & FLAG_RISING) !== 0,
      );
      if (a.rising) flags[i]! |= FLAG_RISING;
      useNeed[i] = a.useNeedCpuMillis;
      // The levels below yield only to a miss that lasts two windows in a row: one 100 ms
      // reading of a server held at its goal + 5 % is above GOAL_MISS_YIELD_PI now and then,
      // and each such window cost the level below its share.
      if (a.missesGoal) {
        flags[i]! |= FLAG_MISSED_GOAL;
        if ((prevFlags[i]! & FLAG_MISSED_GOAL) !== 0) {
          controlled[i] = 1;
          if (imp < yieldTo) yieldTo = imp;
        }
      }
      if ((a.delayed || a.dropping) && a.kind !== "idle") congested = true;
      mode[i] = Mode.demand;
      target[i] = demandTarget(a.demandCpuMillis, min, max);
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
      eligible[i] = a.goalReceiver || !hasGoal(spec) ? 1 : 0;
      demand[i] = Math.min(a.demandCpuMillis, max);
    } else if (hasPrev) {
      src = Source.held;
      mode[i] = Mode.held;
      target[i] = clamp(pc, min, max);
      eligible[i] = 0;
      demand[i] = pd;
    } else {
      src = Source.unseen;
      mode[i] = Mode.demand;
      target[i] = min;
      eligible[i] = 1;
      demand[i] = Number.NaN; // nothing measured yet: the first real demand is not smoothed
    }
    source[i] = src;
    // A donor's steps are its goal controller's (at most −GOAL_STEP_FRACTION a cycle): the
    // shrink limit does not slow them again, so its surplus reaches the levels below in a few
    // cycles (at −10 % a cycle it took 1.2–1.5 s on the real testbed, goals-tiers-real).
    prevNeed[i] =
      src === Source.network && a.donor
        ? clamp(a.demandCpuMillis, min, max)
        : protectedNeed(src, pc, pd, min, max);
    const pi =
      tp === null ? null : performanceIndex(spec.goalPacketsPerSec, tp.servedPacketsPerSec);
    pis[i] = pi === null ? Number.NaN : pi;
    if (pi !== null && pi > 1 && imp < receiverImportance) receiverImportance = imp;
  }
  if (receiverImportance <= 5)
    for (let i = 0; i < n; i++)
      if (pis[i]! > 1 && importance[i] === receiverImportance) receiver[i] = 1;
  if (yieldTo <= 5)
    yieldToReceivers(
      specs,
      yieldTo,
      source,
      importance,
      controlled,
      useNeed,
      lo,
      hi,
      target,
      demand,
      eligible,
    );

  const problem: AllocationProblem = {
    capacityCpuMillis: capacity,
    lo,
    hi,
    weight,
    importance,
    mode,
    target,
    leftoverEligible: eligible,
    shareLeftover,
    canUseFirst,
  };
  allocate(problem, { alloc: ideal, effectiveMin, leftover }, sc.alloc);
  const frame: AllocationFrame = {
    capacityCpuMillis: capacity,
    deadbandCpuMillis: deadband,
    maxShrinkFraction: knobs.maxShrinkFractionPerCycle,
    lo: effectiveMin,
    hi,
    prev: prevCpu,
    prevNeed,
    ideal,
    importance,
  };
  runPostProcessors(frame, postProcessors, final, marks, [post0, post1]);
  const batch = anyBatch
    ? nextBatchSuppression(
        state.batch,
        congested,
        knobs.suppressBatchAfterCycles,
        knobs.releaseBatchAfterCycles,
      )
    : undefined;
  const bands = weightBands(knobs, capacity, deadband);

  const reasons: StepReasons = {
    context: { knobs, capacityCpuMillis: capacity, deadbandCpuMillis: frame.deadbandCpuMillis },
    specs,
    throughput: tps,
    prevDemand,
    ideal,
    leftover,
    effectiveMin,
    bits,
    capCode,
    batchSuppressed: batch?.active ?? false,
    prevWeight,
    prevFlags,
    divisors,
    yieldTo,
    weights,
    shownDemand,
    previous: prevCpu,
    cpuMillis: final,
    velocity,
    performanceIndex: pis,
  };
  const directives: Directive[] = new Array(n);
  const decisions: WeirDecision[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const cpu = final[i]!;
    directives[i] = express(
      specs[i]!,
      cpu,
      hi[i]!,
      capacity,
      knobs,
      batch?.active ?? false,
      prevWeight[i]!,
      bands,
      divisors[importance[i]!]!,
    );
    weights[i] = directives[i]!.weight;
    capCode[i] = capCodeOf(directives[i]!.capReason);
    const d = demand[i]!;
    shownDemand[i] = Math.round(Number.isNaN(d) ? target[i]! : Math.max(d, lo[i]!));
    bits[i] = packBits(
      source[i]!,
      marks[i]!,
      receiver[i] === 1,
      !Number.isNaN(prevCpu[i]!),
      controlled[i] === 2,
    );
    decisions[i] = new WeirDecision(reasons, i);
  }
  return {
    directives,
    decisions,
    state: packedState({ ids, cpuMillis: final, demand, velocity, weight: weights, flags }, batch),
  };
}

/**
 * Receivers first (z/OS WLM): while a goal partition at importance `yieldTo` misses its goal
 * and is short of CPU (DemandAssessment.missesGoal), the spare goes only to the goal receivers
 * at that level, and a partition without a goal at a less important level yields: it claims at most
 * its use + headroom (no congestion probe, no traffic claim) and no spare. Under weights it
 * still runs on any CPU the receivers leave idle; under contention its weight no longer grows
 * against theirs. Real testbed, goals-tiers-real (importance 1 and 2 with goals, 3 without, one
 * CPU, capacity 1.7): importance 3 (waiting for CPU 70–85 %) was entitled to 380–940m beside an importance-2
 * receiver entitled to 340–770m (a per-cycle trace), and took 15 % of what importance 1 left
 * (b ÷ (b + c) 84.8 %, 5 repetitions).
 * `controlled` marks the partitions that miss their goals 1 on entry; yielding ones are marked
 * 2 here.
 */
function yieldToReceivers(
  specs: readonly PartitionSpec[],
  yieldTo: number,
  source: Uint8Array,
  importance: Uint8Array,
  controlled: Uint8Array,
  useNeed: Float64Array,
  lo: Float64Array,
  hi: Float64Array,
  target: Float64Array,
  demand: Float64Array,
  eligible: Uint8Array,
): void {
  for (let i = 0; i < specs.length; i++) {
    if (source[i] !== Source.network) continue;
    const imp = importance[i]!;
    if (controlled[i] === 1) {
      if (imp !== yieldTo) eligible[i] = 0;
      continue;
    }
    if (hasGoal(specs[i]!)) continue;
    if (imp <= yieldTo) {
      eligible[i] = 0;
      continue;
    }
    controlled[i] = 2;
    eligible[i] = 0;
    const claim = yieldingDemand(demand[i]!, useNeed[i]!);
    demand[i] = claim;
    target[i] = demandTarget(claim, lo[i]!, hi[i]!);
  }
}

/**
 * This cycle's throughput per spec. The manager fills the map in spec order, so walk both in
 * step (a merge join: sequential reads, ~2× faster than 10,000 hash lookups here; forEach
 * allocates no iterator results); whatever the walk could not place is looked up by key.
 */
function alignThroughput(
  specs: readonly PartitionSpec[],
  throughput: ReadonlyMap<PartitionId, Throughput>,
): Array<Throughput | null> {
  const n = specs.length;
  const out: Array<Throughput | null> = new Array(n).fill(null);
  let i = 0;
  let matched = 0;
  throughput.forEach((tp, id) => {
    if (i === n) return; // out of spec order from here on (or no such spec): looked up below
    // specs without data this cycle sit between two entries: they stay null
    while (i < n && specs[i]!.id !== id) i++;
    if (i === n) return;
    out[i++] = tp;
    matched++;
  });
  if (matched < throughput.size)
    for (let k = 0; k < n; k++) if (out[k] === null) out[k] = throughput.get(specs[k]!.id) ?? null;
  return out;
}

const nullIfNaN = (x: number): number | null => (Number.isNaN(x) ? null : x);
