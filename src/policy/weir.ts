// weir's workload policy: the control law of ARCHITECTURE.md as one pure step.
//   velocity → demand (confirmed by congestion, smoothed, goal floor) → allocation (mins,
//   held, tiers, left-over) → post-processors (dead-band, shrink limit, bounds, whole millis)
//   → directives + decisions + state.
// No I/O, no clock (time comes in as input.nowMs), no node:* imports. See README.md.
import type { Directive, PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import { type AllocationProblem, allocate, Mode } from "./allocate.ts";
import { Flags, type StepRecord, WeirDecision } from "./decision.ts";
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
import type {
  PartitionPolicyState,
  Policy,
  PolicyInput,
  PolicyOutput,
  PolicyState,
} from "./types.ts";

/** cgroup v2 cpu.weight range. */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 10_000;

/**
 * Directive weight on the v2 scale: the allocation's share of capacity mapped onto 1..10000
 * (10000 = all of capacity), so weights are proportional to allocations and sum to at most
 * 10000 (plus the 1 a zero allocation still gets). 500m of 2,000m → 2,500.
 */
export function weightForAllocation(cpuMillis: number, capacityCpuMillis: number): number {
  if (!(capacityCpuMillis > 0)) return WEIGHT_MIN;
  const w = Math.round((cpuMillis / capacityCpuMillis) * WEIGHT_MAX);
  return Math.min(WEIGHT_MAX, Math.max(WEIGHT_MIN, w));
}

/** Whole CPUs to run on: ceil of the cap, at least 1. 1,001m → 2. */
export function cpuCountForAllocation(cpuMillis: number): number {
  return Math.max(1, Math.ceil(cpuMillis / 1000));
}

export interface WeirPolicyOptions {
  /** Post-processors applied after the core step (default: dead-band, shrink limit, bounds, whole millis). */
  postProcessors?: readonly PostProcessor[];
}

export function createWeirPolicy(opts: WeirPolicyOptions = {}): Policy {
  const postProcessors = opts.postProcessors ?? defaultPostProcessors;
  return {
    name: "weir",
    initialState: (): PolicyState => ({ partitions: {} }),
    step: (input, state) => step(input, state, postProcessors),
  };
}

/** weir's control law with the default post-processors. */
export const weirPolicy: Policy = createWeirPolicy();

function step(
  input: PolicyInput,
  state: PolicyState,
  postProcessors: readonly PostProcessor[],
): PolicyOutput {
  const { knobs, specs, throughput } = input;
  const n = specs.length;
  const capacity = Math.max(0, Math.floor(knobs.capacityCpuMillis));
  const prev = readPrevious(state, specs);
  const shareLeftover = knobs.leftover === "share";

  const lo = new Float64Array(n);
  const hi = new Float64Array(n);
  const weight = new Float64Array(n);
  const importance = new Uint8Array(n);
  const mode = new Uint8Array(n);
  const target = new Float64Array(n);
  const eligible = new Uint8Array(n);
  const prevNeed = new Float64Array(n);
  const demand = new Float64Array(n);
  const velocity = new Float64Array(n);
  const source = new Uint8Array(n);
  const kind = new Uint8Array(n);
  const flags = new Uint8Array(n);
  const used = new Float64Array(n);
  const trafficNeed = new Float64Array(n);
  const useNeed = new Float64Array(n);
  const probeFrom = new Float64Array(n);
  const rawDemand = new Float64Array(n);
  const goalFloor = new Float64Array(n);
  const assessed = new Float64Array(n);
  const pis: Array<number | null> = new Array(n);
  const tps: Array<Throughput | null> = new Array(n);
  const a = emptyAssessment();
  let receiverImportance = 6;

  for (let i = 0; i < n; i++) {
    const spec = specs[i]!;
    const min = Math.max(0, Math.ceil(spec.minCpuMillis));
    const max = Math.max(min, Math.floor(spec.maxCpuMillis));
    lo[i] = min;
    hi[i] = max;
    weight[i] = spec.weight;
    const imp = clampImportance(spec.importance);
    importance[i] = imp;
    const prevCpu = prev.cpuMillis[i]!;
    const prevDemand = prev.demand[i]!;
    const hasPrev = !Number.isNaN(prevCpu);
    const tp = throughput.get(spec.id) ?? null;
    tps[i] = tp;
    const v = smoothVelocity(
      nullIfNaN(prev.velocity[i]!),
      tp === null ? null : tp.rawVelocityPacketsPerCpuSec,
      knobs.velocitySmoothing,
    );
    velocity[i] = v === null ? Number.NaN : v;
    if (spec.kind === "batch") {
      source[i] = SOURCE_BATCH;
      mode[i] = Mode.batch;
      target[i] = min;
      eligible[i] = 1;
      demand[i] = max;
      prevNeed[i] = hasPrev ? min : Number.NaN; // all it has above min is left-over: not protected
    } else if (tp !== null) {
      source[i] = SOURCE_NETWORK;
      assessNetworkDemand(
        tp,
        v,
        hasPrev ? prevCpu : null,
        nullIfNaN(prevDemand),
        spec.goalPacketsPerSec,
        knobs,
        a,
      );
      kind[i] = a.kind === "use" ? 0 : a.kind === "traffic" ? 1 : 2;
      flags[i] =
        (a.throttled ? Flags.throttled : 0) |
        (a.dropping ? Flags.dropping : 0) |
        (a.dropsIgnored ? Flags.dropsIgnored : 0) |
        (a.constrained ? Flags.constrained : 0);
      used[i] = a.usedCpuMillis;
      trafficNeed[i] = a.trafficNeedCpuMillis ?? Number.NaN;
      useNeed[i] = a.useNeedCpuMillis;
      probeFrom[i] = a.probeFromCpuMillis;
      rawDemand[i] = a.rawDemandCpuMillis;
      goalFloor[i] = a.goalFloorCpuMillis ?? Number.NaN;
      assessed[i] = a.demandCpuMillis;
      mode[i] = Mode.demand;
      target[i] = clamp(a.demandCpuMillis, min, max);
      eligible[i] = 1;
      demand[i] = Math.min(a.demandCpuMillis, max);
      prevNeed[i] = hasPrev ? neededBefore(prevDemand, min, max) : Number.NaN;
    } else if (hasPrev) {
      source[i] = SOURCE_HELD;
      mode[i] = Mode.held;
      target[i] = clamp(prevCpu, min, max);
      eligible[i] = 0;
      demand[i] = prevDemand;
      prevNeed[i] = neededBefore(prevDemand, min, max);
    } else {
      source[i] = SOURCE_UNSEEN;
      mode[i] = Mode.demand;
      target[i] = min;
      eligible[i] = 1;
      demand[i] = Number.NaN; // nothing measured yet: the first real demand is not smoothed
      prevNeed[i] = Number.NaN;
    }
    const pi =
      tp === null ? null : performanceIndex(spec.goalPacketsPerSec, tp.servedPacketsPerSec);
    pis[i] = pi;
    if (pi !== null && pi > 1 && imp < receiverImportance) receiverImportance = imp;
  }
  if (receiverImportance <= 5)
    for (let i = 0; i < n; i++) {
      const pi = pis[i]!;
      if (pi !== null && pi > 1 && importance[i] === receiverImportance)
        flags[i]! |= Flags.receiver;
    }

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
  };
  const core = allocate(problem);
  const frame: AllocationFrame = {
    capacityCpuMillis: capacity,
    deadbandCpuMillis: knobs.deadbandFraction * capacity,
    maxShrinkFraction: knobs.maxShrinkFractionPerCycle,
    lo: core.effectiveMin,
    hi,
    prev: prev.cpuMillis,
    prevNeed,
    ideal: core.alloc,
    importance,
  };
  const { alloc, marks } = runPostProcessors(frame, postProcessors);

  const protectedCpu = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = prev.cpuMillis[i]!;
    const need = prevNeed[i]!;
    protectedCpu[i] = Number.isNaN(need) ? p : Math.min(p, need);
  }
  const record: StepRecord = {
    specs,
    throughput: tps,
    source,
    importance,
    kind,
    flags,
    usedCpuMillis: used,
    trafficNeedCpuMillis: trafficNeed,
    useNeedCpuMillis: useNeed,
    probeFromCpuMillis: probeFrom,
    rawDemandCpuMillis: rawDemand,
    goalFloorCpuMillis: goalFloor,
    assessedDemandCpuMillis: assessed,
    lo,
    hi,
    effectiveMin: core.effectiveMin,
    target,
    ideal: core.alloc,
    leftover: core.leftover,
    prev: prev.cpuMillis,
    protectedCpuMillis: protectedCpu,
    marks,
    headroomFraction: knobs.headroomFraction,
    probeFactor: knobs.probeFactor,
    maxShrinkFraction: knobs.maxShrinkFractionPerCycle,
    deadbandCpuMillis: frame.deadbandCpuMillis,
    capacityCpuMillis: capacity,
    shareLeftover,
  };

  const directives: Directive[] = new Array(n);
  const decisions: WeirDecision[] = new Array(n);
  const ids: PartitionId[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = specs[i]!.id;
    ids[i] = id;
    const cpu = alloc[i]!;
    directives[i] = {
      partition: id,
      cpuMillis: cpu,
      weight: weightForAllocation(cpu, capacity),
      cpuCount: cpuCountForAllocation(cpu),
    };
    const p = prev.cpuMillis[i]!;
    const d = demand[i]!;
    const v = velocity[i]!;
    decisions[i] = new WeirDecision(
      record,
      i,
      Math.round(Number.isNaN(d) ? target[i]! : Math.max(d, lo[i]!)),
      Number.isNaN(p) ? 0 : p,
      cpu,
      Number.isNaN(v) ? null : v,
      pis[i]!,
    );
  }
  return {
    directives,
    decisions,
    state: packedState({ ids, cpuMillis: alloc, demand, velocity }),
  };
}

const SOURCE_NETWORK = 0;
const SOURCE_BATCH = 1;
const SOURCE_HELD = 2;
const SOURCE_UNSEEN = 3;

// ---- state: packed arrays, a record only when someone reads it --------------------------

interface PackedState {
  ids: readonly PartitionId[];
  /** NaN where there is no value (velocity unknown). */
  cpuMillis: Float64Array;
  demand: Float64Array;
  velocity: Float64Array;
}

const PACKED = Symbol("weir.policy.packedState");

/**
 * The state the step returns keeps its numbers in arrays aligned with the spec list. Its
 * `partitions` record (what the contract and the state file see) is built on first read and
 * then kept; until then the next step reads the arrays directly (building a 10,000-key record
 * costs more than the whole rest of the step).
 */
function packedState(packed: PackedState): PolicyState {
  const state = {} as PolicyState;
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
    record[p.ids[i]!] = {
      cpuMillis: p.cpuMillis[i]!,
      // No demand measured yet: the allocation is the best stand-in (JSON has no NaN).
      demandCpuMillis: Number.isNaN(demand) ? p.cpuMillis[i]! : demand,
      velocityPacketsPerCpuSec: Number.isNaN(v) ? null : v,
    };
  }
  return record;
}

/** Last cycle's values aligned with this cycle's specs; NaN where a partition has none. */
function readPrevious(state: PolicyState, specs: readonly PartitionSpec[]): PackedState {
  const n = specs.length;
  const cpuMillis = new Float64Array(n).fill(Number.NaN);
  const demand = new Float64Array(n).fill(Number.NaN);
  const velocity = new Float64Array(n).fill(Number.NaN);
  const out: PackedState = { ids: [], cpuMillis, demand, velocity };
  const packed = untouchedPacked(state);
  if (packed) {
    let aligned = packed.ids.length === n;
    for (let i = 0; aligned && i < n; i++) aligned = packed.ids[i] === specs[i]!.id;
    if (aligned) {
      cpuMillis.set(packed.cpuMillis);
      demand.set(packed.demand);
      velocity.set(packed.velocity);
      return out;
    }
    const index = new Map<PartitionId, number>();
    for (let j = 0; j < packed.ids.length; j++) index.set(packed.ids[j]!, j);
    for (let i = 0; i < n; i++) {
      const j = index.get(specs[i]!.id);
      if (j === undefined) continue;
      cpuMillis[i] = packed.cpuMillis[j]!;
      demand[i] = packed.demand[j]!;
      velocity[i] = packed.velocity[j]!;
    }
    return out;
  }
  const record = state.partitions ?? {};
  for (let i = 0; i < n; i++) {
    const id = specs[i]!.id;
    if (!Object.hasOwn(record, id)) continue;
    const ps = record[id];
    if (!ps || !Number.isFinite(ps.cpuMillis)) continue;
    cpuMillis[i] = ps.cpuMillis;
    demand[i] = Number.isFinite(ps.demandCpuMillis) ? ps.demandCpuMillis : Number.NaN;
    const v = ps.velocityPacketsPerCpuSec;
    velocity[i] = v !== null && v > 0 && Number.isFinite(v) ? v : Number.NaN;
  }
  return out;
}

/** The packed arrays behind a state this policy returned, unless its record was read (and so may have been changed). */
function untouchedPacked(state: PolicyState): PackedState | null {
  const packed = (state as { [PACKED]?: PackedState })[PACKED];
  if (!packed) return null;
  const d = Object.getOwnPropertyDescriptor(state, "partitions");
  return d?.get ? packed : null;
}

/**
 * What a partition needed last cycle, the part of its allocation the shrink limit protects.
 * With no demand measured yet, only its guarantee was needed; the rest was left-over.
 */
const neededBefore = (prevDemand: number, min: number, max: number): number =>
  Number.isNaN(prevDemand) ? min : clamp(prevDemand, min, max);
const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);
const nullIfNaN = (x: number): number | null => (Number.isNaN(x) ? null : x);
const clampImportance = (x: number): number => {
  const r = Math.round(x);
  return r < 1 ? 1 : r > 5 ? 5 : r;
};
