// How an entitlement reaches the kernel (weights first): the directive's weight (with its
// dead-band), the idle class for batch, a cap only with a reason, CFS burst, a CPU count.
// Pure; split from weir.ts, whose step calls capCodeFor and directedWeight once per partition.
import type { CapReason, Directive, PartitionId, PartitionSpec } from "../core/model.ts";
import {
  clamp,
  goalWeightBandFraction,
  hasGoal,
  roundHalfUp,
  WEIGHT_MAX,
  WEIGHT_MIN,
  weightForAllocation,
} from "./rules.ts";
import type { PartitionTable } from "./table.ts";
import type { DirectiveTable, PolicyKnobs } from "./types.ts";

/** Whole CPUs to run on: ceil of what it may use (its cap, else its max), at least 1. 1,001m → 2. */
export function cpuCountForAllocation(cpuMillis: number): number {
  return Math.max(1, Math.ceil(cpuMillis / 1000));
}

/** Cap reasons as codes (0 = no cap) for the directive columns and the decisions' reasons. */
export const CAP_REASONS: readonly (CapReason | null)[] = [
  null,
  "max",
  "capped",
  "suppress-batch",
  "goal-donor",
];
/** goalDonor: set by the step itself (donor-cap.ts), never by capCodeFor. */
export const CapCode = { none: 0, max: 1, capped: 2, suppressBatch: 3, goalDonor: 4 } as const;

/**
 * The entitlement as the kernel should see it — weights first:
 * - weight ∝ entitlement (share of capacity on the 1..10000 scale), so under full contention
 *   each partition gets its entitlement (the tiers already put importance first) and CPU a
 *   partition leaves idle flows to the others at once; an unconstrained network partition
 *   without a goal gets at least the heaviest weight at its importance or below
 *   (weightFloorsByImportance): it takes only what it uses, and need not wait behind them;
 * - batch runs in the idle class (minimum weight where the kernel has none): every idle
 *   cycle, and it yields at wake-up;
 * - a cap only for a configured max, a `capped` partition (cap = entitlement), or batch while
 *   network partitions stay congested (cap = its entitlement, no burst); and a goal donor's
 *   (cap = entitlement, no burst, over `capPeriodUs`), which the step sets itself
 *   (donor-cap.ts). A cap comes with a burst of burstFraction × cap, so a short burst does not
 *   wait out the period.
 * The step keeps a directive as two numbers per partition (its weight and its cap code, beside
 * its entitlement); `directiveAt` builds the object from them for whoever reads one.
 */
export function capCodeFor(
  cpu: number,
  max: number,
  capacity: number,
  capped: boolean,
  batch: boolean,
  suppressBatch: boolean,
): number {
  // CapCode's values as literals (checked below): an exported constant is read through a cell,
  // with a check, at each use, and the step calls this once a row
  let cap = Number.POSITIVE_INFINITY;
  let code = 0; // none
  if (capped) {
    cap = cpu;
    code = 2; // capped
  } else if (batch && suppressBatch) {
    // held to its entitlement: with leftover batch-first, what the network partitions' demand
    // leaves of capacity (at least its guarantee)
    cap = cpu;
    code = 3; // suppressBatch
  }
  if (max < capacity && max < cap) code = 1; // max
  return code;
}

/** capCodeFor's literals are these. */
if (CapCode.none !== 0 || CapCode.max !== 1 || CapCode.capped !== 2 || CapCode.suppressBatch !== 3)
  throw new Error("capCodeFor: cap codes changed");

/**
 * The weight a directive carries: the minimum for batch, else its share (at least `floor`, the
 * light-partition floor of weightFloorsByImportance; 0 = none) within its band.
 */
export function directedWeight(
  batch: boolean,
  cpu: number,
  capacity: number,
  prevWeight: number,
  band: WeightBand,
  divisor: number,
  floor = 0,
): number {
  return batch
    ? WEIGHT_MIN
    : keepWeight(
        prevWeight,
        Math.max(weightForAllocation(cpu, capacity, divisor), floor),
        band,
        divisor,
      );
}

/**
 * The light-partition weight floor, by importance (index 1..5; index 0 unused): `out[L]` is the
 * largest weight the entitlement of any non-batch partition at importance L or less important
 * stands for (weightForAllocation with its own importance's divisor), 0 where there is none.
 * The step gives it to a network partition without a goal that is not constrained (its demand
 * is its use + headroom) and does not yield: such a partition takes only what it uses, so a
 * weight above its share costs no one CPU under contention, but with a weight in proportion to
 * a small entitlement it waits behind heavier partitions at every wake-up (real testbed,
 * scenarios-real's hog scenario: partition a, 0.23 of a core offered, weighted 2,363 beside c's
 * 5,389, had a p99 of 91.8 ms against 39.1 ms under equal static weights). Taking the floor
 * from L and below keeps importance first at wake-ups too: an unconstrained partition's weight
 * is never below that of an unconstrained less important one.
 *   capacity 1,700m, importance 3 only: a 400m, b 460m, c 916m → out[1..3] = 5,388 (c's).
 */
export function weightFloorsByImportance(
  n: number,
  cpuMillis: Float64Array,
  batch: Uint8Array,
  importance: Uint8Array,
  divisors: Float64Array,
  capacityCpuMillis: number,
  out: Float64Array = new Float64Array(6),
): Float64Array {
  // the largest entitlement per level (one divisor per level: the largest weight there is that
  // of the largest entitlement); -1 = no row. `out` holds them until the weights replace them.
  out.fill(-1);
  for (let i = 0; i < n; i++) {
    const imp = importance[i]!;
    const cpu = cpuMillis[i]!;
    // batch rows count for nothing: -1 is never the largest
    const c = batch[i] === 1 ? -1 : cpu;
    if (c > out[imp]!) out[imp] = c;
  }
  let below = 0;
  for (let imp = 5; imp >= 1; imp--) {
    const cpu = out[imp]!;
    const w = cpu >= 0 ? weightForAllocation(cpu, capacityCpuMillis, divisors[imp]!) : 0;
    below = Math.max(w, below);
    out[imp] = below;
  }
  out[0] = 0;
  return out;
}

/**
 * `directedWeight` of rows 0 … n − 1 into `out` (weightAt on each row; the step calls weightAt
 * in its own walk over the rows, with the cap codes). `step-differential.test.ts` checks it
 * against directedWeight on random rows.
 */
export function directWeights(
  n: number,
  cpuMillis: Float64Array,
  batch: Uint8Array,
  goalPacketsPerSec: Float64Array,
  importance: Uint8Array,
  divisors: Float64Array,
  prevWeight: Float64Array,
  capacityCpuMillis: number,
  bands: { normal: WeightBand; goal: WeightBand },
  out: Float64Array,
  /** Per row: directedWeight's `floor` (0 = none); null: none anywhere (nothing read). */
  floor: Float64Array | null,
): void {
  const { fraction, stepOf, moves, weightPerMilli } = weightFrame(
    divisors,
    capacityCpuMillis,
    bands,
  );
  for (let i = 0; i < n; i++) {
    const imp = importance[i]!;
    out[i] = weightAt(
      capacityCpuMillis,
      fraction,
      stepOf,
      moves,
      cpuMillis[i]!,
      imp,
      divisors[imp]!,
      weightPerMilli[imp]!,
      prevWeight[i]!,
      +(goalPacketsPerSec[i]! > 0), // rules.ts hasGoal
      batch[i] === 1,
      floor === null ? 0 : floor[i]!,
    );
  }
}

/** What weightAt reads besides its row: the bands by index, made once per step (weightFrame). */
export interface WeightFrame {
  capacityCpuMillis: number;
  /** index: band (0 normal, 1 goal) × 2 + direction (0 down, 1 up) */
  fraction: Float64Array;
  /** keepWeight returns `next` unmoved when neither its fraction nor its minimum step is positive */
  moves: Uint8Array;
  /** the minimum step in the row's importance's units (band.minStep / divisor): band × 8 + importance */
  stepOf: Float64Array;
  /** per importance: 10000 ÷ (capacity × divisor), a row's weight per millicore before rounding (weightAt) */
  weightPerMilli: Float64Array;
}

export function weightFrame(
  divisors: Float64Array,
  capacityCpuMillis: number,
  bands: { normal: WeightBand; goal: WeightBand },
): WeightFrame {
  const { normal, goal } = bands;
  const fraction = Float64Array.of(
    normal.downFraction,
    normal.upFraction,
    goal.downFraction,
    goal.upFraction,
  );
  const minStep = Float64Array.of(normal.minStep, normal.minStep, goal.minStep, goal.minStep);
  const moves = Uint8Array.from([0, 1, 2, 3], (k) => +(fraction[k]! > 0 || minStep[k]! > 0));
  // per importance 0 … 7, a divisor of 1 past the table's, read as such and not out of bounds
  // (a typed array's read past its end takes V8's slow path)
  const divisorOf = new Float64Array(8).fill(1);
  divisorOf.set(divisors.subarray(0, 8));
  const stepOf = new Float64Array(32);
  for (let k = 0; k < 4; k++)
    for (let imp = 0; imp < 8; imp++) stepOf[(k << 3) | imp] = minStep[k]! / divisorOf[imp]!;
  const weightPerMilli = new Float64Array(8);
  for (let imp = 0; imp < 8; imp++)
    weightPerMilli[imp] = 10_000 / (capacityCpuMillis * divisorOf[imp]!);
  return {
    capacityCpuMillis,
    fraction,
    moves,
    stepOf,
    weightPerMilli,
  };
}

/** weightAt's one multiplication stands for its divisions below this product … */
const SHARE_EXACT_BELOW = 1_048_576; // 2^20: the products differ by at most 1e-9 there
/** … and more than 1e-8 away from a half (|fraction of product + 0.5, less 0.5| below this). */
const SHARE_CLEAR = 0.5 - 1e-8;

/** weightAt's literals are these (an imported constant is read through a cell at each use). */
if (WEIGHT_MIN !== 1 || WEIGHT_MAX !== 10_000) throw new Error("weightAt: weight range changed");

/**
 * directedWeight of one row, the same value for every input: weightForAllocation, the floor
 * (0 = none), keepWeight in the row's band (`goalBand` 1 for a goal partition), the minimum for
 * batch. The frame's fields (weightFrame: `fraction`, `stepOf`, `moves`) come as arguments, read
 * from the frame once per walk by the caller: read from the frame object in each call, they were
 * loaded again each row (a standalone loop over a real step's 10,000 rows: 61.8 µs with the
 * frame object and a two-slot pick, 40.6 µs with these arguments and a conditional). The choices
 * most rows make the same way (the clamp to 1..10000, the band's larger bound) and whether the
 * weight moves are plain comparisons (in policy-step's fleet 19 % of the rows move). Math.max(1,
 * w) and Math.min(10000, w) keep a NaN as the comparisons do; a NaN previous weight (none yet)
 * keeps nothing, as in keepWeight, because every comparison with it is false.
 * `step-differential.test.ts` checks it (through directWeights) against directedWeight.
 */
export function weightAt(
  capacityCpuMillis: number,
  fraction: Float64Array,
  stepOf: Float64Array,
  moves: Uint8Array,
  cpuMillis: number,
  imp: number,
  divisor: number,
  /** 10000 ÷ (capacity × divisor): WeightFrame.weightPerMilli of the row's importance */
  weightPerMilli: number,
  prev: number,
  goalBand: number,
  batch: boolean,
  floor: number,
): number {
  // weightForAllocation: roundHalfUp(cpu ÷ capacity ÷ divisor × 10000), by one multiplication
  // (weightPerMilli) where that cannot change the whole number it rounds to. Both products are
  // within 4 rounding errors (4 · 2^-53, relative) of the real quotient, so below 2^20
  // (SHARE_EXACT_BELOW) they differ by at most 1e-9, and when the product is positive and
  // more than 1e-8 away from the nearest half (SHARE_CLEAR) the two round to the same whole
  // number; otherwise (a half within reach, 0, NaN, Infinity) the divisions themselves. The two
  // dependent divisions were the walk's longest chain per row.
  let next = 1;
  if (capacityCpuMillis > 0) {
    const approx = cpuMillis * weightPerMilli;
    const whole = Math.floor(approx + 0.5);
    const x =
      approx > 0 && approx < SHARE_EXACT_BELOW && Math.abs(approx + 0.5 - whole - 0.5) < SHARE_CLEAR
        ? whole
        : roundHalfUp((cpuMillis / capacityCpuMillis / divisor) * 10_000);
    next = Math.min(10_000, Math.max(1, x));
  }
  // the light-partition floor: Math.max(next, floor) (both are weights, neither NaN)
  if (floor > next) next = floor;
  // keepWeight
  const k = (goalBand << 1) | +(next >= prev);
  const byFraction = fraction[k]! * prev;
  const byStep = stepOf[(k << 3) | imp]!;
  // NaN when there is no previous weight: every comparison with it is false, so nothing is kept
  const band = Math.max(byFraction, byStep);
  const kept = (+(Math.abs(next - prev) < band) & moves[k]!) === 1 ? prev : next;
  // batch: the minimum
  return batch ? 1 : kept;
}

/** The cap a code stands for (Infinity = none): the entitlement, or the configured max. */
export const capOf = (code: number, cpu: number, max: number): number =>
  code === CapCode.none ? Number.POSITIVE_INFINITY : code === CapCode.max ? max : cpu;

/** One directive from its columns (what express decided: cpu, weight, cap code). */
export function directiveAt(
  partition: PartitionId,
  cpu: number,
  weight: number,
  code: number,
  batch: boolean,
  max: number,
  capacity: number,
  burstFraction: number,
  donorCapPeriodUs = 0,
): Directive {
  const cap = capOf(code, cpu, max);
  const reason = CAP_REASONS[code] ?? null;
  // a donor's cap has no burst: banked runtime would let it run past its goal's share, which
  // is the CPU the levels below are to get in one block
  const burst =
    reason === null || reason === "suppress-batch" || reason === "goal-donor"
      ? 0
      : Math.floor(cap * clamp(burstFraction, 0, 1));
  const d: Directive = {
    partition,
    cpuMillis: cpu,
    weight,
    idle: batch,
    capCpuMillis: cap,
    burstCpuMillis: burst,
    capReason: reason,
    cpuCount: cpuCountForAllocation(Math.min(cap, max, capacity)),
  };
  if (code === CapCode.goalDonor && donorCapPeriodUs > 0) d.capPeriodUs = donorCapPeriodUs;
  return d;
}

/** The directives of one step as its columns; row `i`'s object is made on first request and kept. */
export class StepDirectives implements DirectiveTable {
  #objects: Directive[] | null = null;

  constructor(
    readonly table: PartitionTable,
    /** Entitlement (the step's final allocation) and directed weight per row. */
    readonly cpuMillis: Float64Array,
    readonly weight: Float64Array,
    /** Index into CAP_REASONS per row. */
    readonly capCode: Uint8Array,
    readonly capacityCpuMillis: number,
    readonly burstFraction: number,
    /** The CFS period of a donor cap (knobs.donorCapPeriodMs), µs. */
    readonly donorCapPeriodUs = 0,
  ) {}

  get size(): number {
    return this.table.size;
  }

  at(i: number): Directive {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`directive row ${i} of ${this.size}`);
    this.#objects ??= new Array(this.size);
    let d = this.#objects[i];
    if (d === undefined) {
      const t = this.table;
      d = directiveAt(
        t.ids[i]!,
        this.cpuMillis[i]!,
        this.weight[i]!,
        this.capCode[i]!,
        t.batch[i] === 1,
        t.limitCpuMillis[i]!,
        this.capacityCpuMillis,
        this.burstFraction,
        this.donorCapPeriodUs,
      );
      this.#objects[i] = d;
    }
    return d;
  }
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
    goal: {
      upFraction: goalWeightBandFraction(knobs),
      downFraction: goalWeightBandFraction(knobs),
      minStep: 0,
    },
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
