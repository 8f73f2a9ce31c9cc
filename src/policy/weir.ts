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
import type {
  CapReason,
  Directive,
  PartitionId,
  PartitionSpec,
  Throughput,
} from "../core/model.ts";
import {
  type AllocationProblem,
  type AllocationScratch,
  allocate,
  createAllocationScratch,
  Mode,
} from "./allocate.ts";
import { packBits, type StepReasons, WeirDecision } from "./decision.ts";
import {
  assessNetworkDemand,
  emptyAssessment,
  performanceIndex,
  smoothVelocity,
} from "./demand.ts";
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
  WEIGHT_MIN,
  weightDivisors,
  weightForAllocation,
  yieldingDemand,
} from "./rules.ts";
import type {
  BatchSuppressionState,
  PartitionPolicyState,
  Policy,
  PolicyInput,
  PolicyKnobs,
  PolicyOutput,
  PolicyState,
} from "./types.ts";

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

/** Whole CPUs to run on: ceil of what it may use (its cap, else its max), at least 1. 1,001m → 2. */
export function cpuCountForAllocation(cpuMillis: number): number {
  return Math.max(1, Math.ceil(cpuMillis / 1000));
}

/** Cap reasons as codes (0 = no cap) for the decisions' packed reasons. */
export const CAP_REASONS: readonly (CapReason | null)[] = [null, "max", "capped", "suppress-batch"];
const CapCode = { none: 0, max: 1, capped: 2, suppressBatch: 3 } as const;

/**
 * Batch suppression for the next cycle: `congested` says a network partition was constrained
 * (waiting for CPU or dropping, with traffic it serves, while using at least half its
 * entitlement) this cycle. Batch is capped once that has lasted `after` cycles in a row and
 * released after `release` calm cycles in a row. A cap is an experiment: if the congestion is
 * still there after `after + release` capped cycles, batch was not the cause (the delay comes
 * from the network partitions' own contention, the load generator, other work on the host), so
 * it is released and not capped again for `cooldown` cycles — on the real testbed network
 * partitions waited 29 % of the time with the hog stopped, and a cap that never let go left the
 * host 29 % idle.
 */
export function nextBatchSuppression(
  prev: BatchSuppressionState | undefined,
  congested: boolean,
  after: number,
  release: number,
  cooldown = 30 * Math.max(1, after),
): BatchSuppressionState {
  const p = prev ?? { congestedCycles: 0, calmCycles: 0, active: false };
  const activeCycles = p.activeCycles ?? 0;
  const cooldownCycles = p.cooldownCycles ?? 0;
  if (p.active) {
    if (congested) {
      const capped = activeCycles + 1;
      if (capped >= after + release)
        // capping did not relieve it: let go and do not try again for a while
        return {
          congestedCycles: 0,
          calmCycles: 0,
          active: false,
          activeCycles: 0,
          cooldownCycles: cooldown,
        };
      return {
        congestedCycles: p.congestedCycles + 1,
        calmCycles: 0,
        active: true,
        activeCycles: capped,
        cooldownCycles: 0,
      };
    }
    const calmCycles = p.calmCycles + 1;
    const stays = calmCycles < release;
    return {
      congestedCycles: 0,
      calmCycles,
      active: stays,
      activeCycles: stays ? activeCycles + 1 : 0,
      cooldownCycles: 0,
    };
  }
  const cool = Math.max(0, cooldownCycles - 1);
  if (congested) {
    const congestedCycles = p.congestedCycles + 1;
    const start = after > 0 && cooldownCycles === 0 && congestedCycles >= after;
    return {
      congestedCycles,
      calmCycles: 0,
      active: start,
      activeCycles: start ? 1 : 0,
      cooldownCycles: cool,
    };
  }
  return {
    congestedCycles: 0,
    calmCycles: p.calmCycles + 1,
    active: false,
    activeCycles: 0,
    cooldownCycles: cool,
  };
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

  // What the output keeps: the next state's three arrays and the decisions' reasons.
  // Everything else is scratch.
  const final = new Float64Array(n);
  const demand = new Float64Array(n);
  const velocity = new Float64Array(n);
  const prevDemand = new Float64Array(n);
  const ideal = new Float64Array(n);
  const leftover = new Float64Array(n);
  const effectiveMin = new Float64Array(n);
  const bits = new Uint8Array(n);
  const buf = sc.fit(n, 11, 7);
  const [prevCpu, prevVelocity, lo, hi, weight, target, prevNeed, pis, post0, post1, useNeed] =
    buf.f64 as [
      Float64Array,
      Float64Array,
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

  const prevWeight = new Float64Array(n);
  const prevRising = new Uint8Array(n);
  const rising = new Uint8Array(n);
  readPrevious(state, specs, prevCpu, prevDemand, prevVelocity, prevWeight, prevRising);
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
        prevRising[i] === 1,
      );
      if (a.rising) rising[i] = 1;
      useNeed[i] = a.useNeedCpuMillis;
      if (a.missesGoal) {
        controlled[i] = 1;
        if (imp < yieldTo) yieldTo = imp;
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
  const capCode = new Uint8Array(n);
  const weights = new Float64Array(n);
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
    prevRising,
    divisors,
    yieldTo,
    weights,
  };
  const directives: Directive[] = new Array(n);
  const decisions: WeirDecision[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
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
    const p = prevCpu[i]!;
    const d = demand[i]!;
    const v = velocity[i]!;
    const pi = pis[i]!;
    const hasPrev = !Number.isNaN(p);
    bits[i] = packBits(source[i]!, marks[i]!, receiver[i] === 1, hasPrev, controlled[i] === 2);
    decisions[i] = new WeirDecision(
      reasons,
      i,
      id,
      Math.round(Number.isNaN(d) ? target[i]! : Math.max(d, lo[i]!)),
      hasPrev ? p : 0,
      cpu,
      Number.isNaN(v) ? null : v,
      Number.isNaN(pi) ? null : pi,
    );
  }
  return {
    directives,
    decisions,
    state: packedState({ ids, cpuMillis: final, demand, velocity, weight: weights, rising }, batch),
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
 * The entitlement as the kernel should see it — weights first:
 * - weight ∝ entitlement (share of capacity on the 1..10000 scale), so under full contention
 *   each partition gets its entitlement (the tiers already put importance first) and CPU a
 *   partition leaves idle flows to the others at once;
 * - batch runs in the idle class (minimum weight where the kernel has none): every idle
 *   cycle, and it yields at wake-up;
 * - a cap only for a configured max, a `capped` partition (cap = entitlement), or batch while
 *   network partitions stay congested (cap = its entitlement, no burst). A cap comes with a
 *   burst of burstFraction × cap, so a short burst does not wait out the period.
 */
function express(
  spec: PartitionSpec,
  cpu: number,
  max: number,
  capacity: number,
  knobs: PolicyKnobs,
  suppressBatch: boolean,
  prevWeight: number,
  bands: { normal: WeightBand; goal: WeightBand },
  divisor: number,
): Directive {
  const batch = spec.kind === "batch";
  let cap = Number.POSITIVE_INFINITY;
  let reason: CapReason | null = null;
  if (spec.capped) {
    cap = cpu;
    reason = "capped";
  } else if (batch && suppressBatch) {
    // held to its entitlement: with leftover batch-first, what the network partitions' demand
    // leaves of capacity (at least its guarantee)
    cap = cpu;
    reason = "suppress-batch";
  }
  if (max < capacity && max < cap) {
    cap = max;
    reason = "max";
  }
  const burst =
    reason === null || reason === "suppress-batch"
      ? 0
      : Math.floor(cap * clamp(knobs.burstFraction, 0, 1));
  return {
    partition: spec.id,
    cpuMillis: cpu,
    weight: batch
      ? WEIGHT_MIN
      : keepWeight(
          prevWeight,
          weightForAllocation(cpu, capacity, divisor),
          bandOf(spec, bands),
          divisor,
        ),
    idle: batch,
    capCpuMillis: cap,
    burstCpuMillis: burst,
    capReason: reason,
    cpuCount: cpuCountForAllocation(Math.min(cap, max, capacity)),
  };
}

/** How far a weight must move before it is rewritten (see keepWeight). */
export interface WeightBand {
  /** A rise must be at least this fraction of the last weight… */
  upFraction: number;
  /** …a fall at least this fraction… */
  downFraction: number;
  /** …and either at least this many weight units. */
  minStep: number;
}

/**
 * The weight dead-bands of a step. A rise is urgent (the partition may need its share under
 * contention now); a fall is not (what it does not use flows to others anyway), so a fall must
 * be 2.5× larger (at most half), and every move at least twice the entitlement dead-band in
 * weight units (a 60m partition's 100 ms readings move by ±40m). 100 ms CPU readings (4 ms
 * ticks) move a 200m entitlement by ±20 %; without a band cpu.shares was rewritten several times
 * a second. A goal partition's weight is its controller's output, and a band wider than the
 * controller's ±25 % step would hold it still: a third of the band, both ways, no minimum.
 */
export function weightBands(
  knobs: PolicyKnobs,
  capacity: number,
  deadbandCpuMillis: number,
): { normal: WeightBand; goal: WeightBand } {
  const f = knobs.weightDeadbandFraction;
  if (!(f > 0)) {
    const none = { upFraction: 0, downFraction: 0, minStep: 0 };
    return { normal: none, goal: none };
  }
  return {
    normal: {
      upFraction: f,
      downFraction: Math.min(0.5, 2.5 * f),
      minStep: 2 * weightForAllocation(deadbandCpuMillis, capacity),
    },
    goal: { upFraction: f / 3, downFraction: f / 3, minStep: 0 },
  };
}

/** The band of one partition: goal partitions move in finer steps (see weightBands). */
export const bandOf = (spec: PartitionSpec, bands: { normal: WeightBand; goal: WeightBand }) =>
  hasGoal(spec) ? bands.goal : bands.normal;

/**
 * Weight dead-band: the previous weight stays unless the new one moves past the band.
 *   prev 1,000, band up 0.15 / down 0.375: new 1,100 → 1,000; 1,200 → 1,200; 700 → 1,000; 600 → 600.
 * `divisor`: the partition's importance divisor; the band's minimum step is in undivided units.
 */
export function keepWeight(prev: number, next: number, band: WeightBand, divisor = 1): number {
  if (Number.isNaN(prev)) return next;
  const fraction = next >= prev ? band.upFraction : band.downFraction;
  if (!(fraction > 0) && !(band.minStep > 0)) return next;
  return Math.abs(next - prev) < Math.max(fraction * prev, band.minStep / divisor) ? prev : next;
}

function capCodeOf(reason: CapReason | null): number {
  switch (reason) {
    case "max":
      return CapCode.max;
    case "capped":
      return CapCode.capped;
    case "suppress-batch":
      return CapCode.suppressBatch;
    default:
      return CapCode.none;
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

// ---- state: packed arrays, a record only when someone reads it --------------------------

interface PackedState {
  ids: readonly PartitionId[];
  /** NaN where there is no value (velocity unknown). */
  cpuMillis: Float64Array;
  demand: Float64Array;
  velocity: Float64Array;
  /** Weight last directed (NaN = none yet). */
  weight: Float64Array;
  /** 1 = last window was a load step (DemandAssessment.rising). */
  rising: Uint8Array;
}

const PACKED = Symbol("weir.policy.packedState");

/**
 * The state the step returns keeps its numbers in arrays aligned with the spec list. Its
 * `partitions` record (what the contract and the state file see) is built on first read and
 * then kept; until then the next step reads the arrays directly (building a 10,000-key record
 * costs more than the whole rest of the step).
 */
function packedState(packed: PackedState, batch?: BatchSuppressionState): PolicyState {
  const state = {} as PolicyState;
  if (batch) state.batch = batch;
  Object.defineProperty(state, PACKED, { value: packed });
  Object.defineProperty(state, "partitions", {
    enumerable: true,
    configurable: true,
    get(): Record<PartitionId, PartitionPolicyState> {
      const record = toRecord(packed);
      Object.defineProperty(state, "partitions", {
        value: record,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return record;
    },
  });
  return state;
}

function toRecord(p: PackedState): Record<PartitionId, PartitionPolicyState> {
  const record: Record<PartitionId, PartitionPolicyState> = Object.create(null);
  for (let i = 0; i < p.ids.length; i++) {
    const v = p.velocity[i]!;
    const demand = p.demand[i]!;
    const w = p.weight[i]!;
    const ps: PartitionPolicyState = {
      cpuMillis: p.cpuMillis[i]!,
      // No demand measured yet: the allocation stands in for readers (JSON has no NaN), and
      // `demandMeasured: false` tells the next step so, which then does not smooth from it.
      demandCpuMillis: Number.isNaN(demand) ? p.cpuMillis[i]! : demand,
      velocityPacketsPerCpuSec: Number.isNaN(v) ? null : v,
    };
    if (Number.isNaN(demand)) ps.demandMeasured = false;
    if (!Number.isNaN(w)) ps.weight = w;
    if (p.rising[i] === 1) ps.rising = true;
    record[p.ids[i]!] = ps;
  }
  return record;
}

/** Last cycle's values aligned with this cycle's specs, written into the given arrays (NaN = none). */
function readPrevious(
  state: PolicyState,
  specs: readonly PartitionSpec[],
  cpuMillis: Float64Array,
  demand: Float64Array,
  velocity: Float64Array,
  weight: Float64Array,
  rising: Uint8Array,
): void {
  const n = specs.length;
  rising.fill(0);
  const packed = untouchedPacked(state);
  if (packed) {
    let aligned = packed.ids.length === n;
    for (let i = 0; aligned && i < n; i++) aligned = packed.ids[i] === specs[i]!.id;
    if (aligned) {
      cpuMillis.set(packed.cpuMillis);
      demand.set(packed.demand);
      velocity.set(packed.velocity);
      weight.set(packed.weight);
      rising.set(packed.rising);
      return;
    }
  }
  cpuMillis.fill(Number.NaN);
  demand.fill(Number.NaN);
  velocity.fill(Number.NaN);
  weight.fill(Number.NaN);
  if (packed) {
    const index = new Map<PartitionId, number>();
    for (let j = 0; j < packed.ids.length; j++) index.set(packed.ids[j]!, j);
    for (let i = 0; i < n; i++) {
      const j = index.get(specs[i]!.id);
      if (j === undefined) continue;
      cpuMillis[i] = packed.cpuMillis[j]!;
      demand[i] = packed.demand[j]!;
      velocity[i] = packed.velocity[j]!;
      weight[i] = packed.weight[j]!;
      rising[i] = packed.rising[j]!;
    }
    return;
  }
  const record = state.partitions ?? {};
  for (let i = 0; i < n; i++) {
    const id = specs[i]!.id;
    if (!Object.hasOwn(record, id)) continue;
    const ps = record[id];
    if (!ps || !Number.isFinite(ps.cpuMillis)) continue;
    cpuMillis[i] = ps.cpuMillis;
    demand[i] =
      ps.demandMeasured !== false && Number.isFinite(ps.demandCpuMillis)
        ? ps.demandCpuMillis
        : Number.NaN;
    const v = ps.velocityPacketsPerCpuSec;
    velocity[i] = v !== null && v > 0 && Number.isFinite(v) ? v : Number.NaN;
    const w = ps.weight;
    weight[i] = w !== undefined && Number.isFinite(w) && w >= WEIGHT_MIN ? w : Number.NaN;
    if (ps.rising === true) rising[i] = 1;
  }
}

/** The packed arrays behind a state this policy returned, unless its record was read (and so may have been changed). */
function untouchedPacked(state: PolicyState): PackedState | null {
  const packed = (state as { [PACKED]?: PackedState })[PACKED];
  if (!packed) return null;
  const d = Object.getOwnPropertyDescriptor(state, "partitions");
  return d?.get ? packed : null;
}

const nullIfNaN = (x: number): number | null => (Number.isNaN(x) ? null : x);
