// Post-processors: pure functions applied, in order, to the core allocation. Each reads the
// frame (bounds, previous values, what was ideal) and an allocation, and writes its result into
// `out` (a different array of the same length); it changes nothing else.
// The list ends with `enforceBounds` and `toWholeMillis`; `runPostProcessors` re-checks the
// result afterwards and repairs it if a custom list broke a bound: safety beats smoothness.
// The default list runs as two fused passes with the same arithmetic (runDefaultList); any
// other list runs one processor at a time.

export interface AllocationFrame {
  /** Whole millicores that may be handed out. */
  capacityCpuMillis: number;
  /** Changes smaller than this are not made (deadbandFraction × capacity). */
  deadbandCpuMillis: number;
  /** A partition's needed allocation may shrink by at most this fraction a cycle. */
  maxShrinkFraction: number;
  /** Floor (the guarantee actually honoured this cycle) and ceiling (max) per partition. */
  lo: Float64Array;
  hi: Float64Array;
  /** Last cycle's allocation, NaN when there is none. */
  prev: Float64Array;
  /** What the partition needed last cycle (smoothed demand clamped to [min, max]), NaN when none. */
  prevNeed: Float64Array;
  /** The core allocation before post-processing. */
  ideal: Float64Array;
  importance: Uint8Array;
}

export interface PostProcessor {
  readonly name: string;
  /** Bit set in the partition's marks when this processor changed its value (0: never noted). */
  readonly flag: number;
  apply(frame: AllocationFrame, alloc: Float64Array, out: Float64Array): void;
}

export const Marks = { shrinkLimited: 1, deadband: 2, boundsFixed: 4 } as const;

/** Values closer than this are the same allocation (float noise, not a change). */
const SAME = 1e-6;
/** Added before flooring so 99.99999999 from float error becomes 100, not 99. */
const FLOOR_EPSILON = 1e-7;

/**
 * Shrink-rate limit: what a partition needed last cycle may shrink by at most
 * maxShrinkFraction a cycle. Only the needed part is protected (min(prev, prevNeed)); capacity
 * it merely borrowed from the left-over can be taken back at once.
 */
export const limitShrink: PostProcessor = {
  name: "shrink-limit",
  flag: Marks.shrinkLimited,
  apply(f, alloc, out) {
    out.set(alloc);
    const keep = 1 - f.maxShrinkFraction;
    for (let i = 0; i < alloc.length; i++) {
      const prev = f.prev[i]!;
      if (Number.isNaN(prev)) continue;
      const need = f.prevNeed[i]!;
      const floor = Math.min(prev, Number.isNaN(need) ? prev : need, f.hi[i]!) * keep;
      if (out[i]! < floor) out[i] = floor;
    }
  },
};

/** Dead-band: a wanted change smaller than deadbandCpuMillis is not made; the previous value stays. */
export const deadband: PostProcessor = {
  name: "dead-band",
  flag: Marks.deadband,
  apply(f, alloc, out) {
    out.set(alloc);
    const band = f.deadbandCpuMillis;
    if (!(band > 0)) return;
    for (let i = 0; i < alloc.length; i++) {
      const prev = f.prev[i]!;
      if (!Number.isNaN(prev) && Math.abs(out[i]! - prev) < band) out[i] = prev;
    }
  },
};

/**
 * Safety: each value inside [lo, hi], and the sum within capacity. When the sum is over
 * (a shrink limit or dead-band kept someone above their ideal while others grew), growth
 * over last cycle is taken back first, least important tier first, in proportion within a
 * tier; growers wait for shrinkers. If that is not enough (capacity fell, mins rose),
 * everyone above their floor gives back in proportion to what they have above it.
 */
export const enforceBounds: PostProcessor = {
  name: "bounds",
  flag: Marks.boundsFixed,
  apply(f, alloc, out) {
    const n = alloc.length;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      let v = alloc[i]!;
      if (!(v >= f.lo[i]!)) v = f.lo[i]!; // also catches NaN
      if (v > f.hi[i]!) v = f.hi[i]!;
      out[i] = v;
      sum += v;
    }
    takeBackExcess(f, out, sum - f.capacityCpuMillis);
  },
};

/**
 * enforceBounds' second part: `out` is within [lo, hi] and sums to capacity + `excess`; take
 * the excess back (growth first, least important level first; then in proportion).
 */
function takeBackExcess(f: AllocationFrame, out: Float64Array, excess: number): void {
  if (excess <= SAME) return;
  // Each level's growth, in one pass (a level's values change only when its own turn
  // comes, so summing them all first gives the sums a pass per level would), then what each
  // level gives back, least important first, then one pass that takes it.
  // Only what grew: a shrinker in the same level gives nothing back here (counting its
  // negative growth took that much more from the growers and left capacity unallocated).
  const growth = new Float64Array(6);
  for (let i = 0; i < out.length; i++)
    growth[f.importance[i]!]! += Math.max(0, growthOf(f, out, i));
  const take = new Float64Array(6);
  const left = levelTakes(growth, excess, take);
  if (take.some((k) => k !== 0)) takeGrowth(f, out, take);
  takeInProportion(f, out, left);
}

/**
 * What each level gives back of its growth (a fraction, into `take`), least important first,
 * until `excess` is covered; returns the excess left.
 */
function levelTakes(growth: Float64Array, excess: number, take: Float64Array): number {
  let left = excess;
  for (let t = 5; t >= 1 && left > SAME; t--) {
    if (growth[t]! <= 0) continue;
    take[t] = Math.min(1, left / growth[t]!);
    left -= growth[t]! * take[t]!;
  }
  return left;
}

/** Each partition gives back its level's fraction of its growth. */
function takeGrowth(f: AllocationFrame, out: Float64Array, take: Float64Array): void {
  for (let i = 0; i < out.length; i++) {
    const k = take[f.importance[i]!] ?? 0;
    if (k === 0) continue;
    const g = growthOf(f, out, i);
    if (g > 0) out[i] = out[i]! - g * k;
  }
}

/** What growth could not cover: everyone above their floor gives back in proportion. */
function takeInProportion(f: AllocationFrame, out: Float64Array, excess: number): void {
  if (!(excess > SAME)) return;
  const n = out.length;
  let above = 0;
  for (let i = 0; i < n; i++) above += out[i]! - f.lo[i]!;
  const take = above > 0 ? Math.min(1, excess / above) : 0;
  for (let i = 0; i < n; i++) out[i] = out[i]! - (out[i]! - f.lo[i]!) * take;
}

/** Growth over last cycle's value (clamped into this cycle's bounds); all above min when new. */
function growthOf(f: AllocationFrame, out: Float64Array, i: number): number {
  const lo = f.lo[i]!;
  const prev = f.prev[i]!;
  const ref = Number.isNaN(prev) ? lo : Math.min(Math.max(prev, lo), f.hi[i]!);
  return out[i]! - ref;
}

/** Whole millicores, rounded down so the sum stays within capacity and each within max. */
export const toWholeMillis: PostProcessor = {
  name: "whole-millis",
  flag: 0,
  apply(_f, alloc, out) {
    for (let i = 0; i < alloc.length; i++) out[i] = Math.floor(alloc[i]! + FLOOR_EPSILON);
  },
};

/**
 * Dead-band first: it judges the change the core wants (ideal vs previous). The shrink limit
 * then makes a wanted shrink in steps of at most maxShrinkFraction; those steps may be smaller
 * than the band (the other order would freeze every allocation below band ÷ maxShrinkFraction,
 * 200m on 2 CPUs with the defaults, the first time its need fell).
 */
export const defaultPostProcessors: readonly PostProcessor[] = [
  deadband,
  limitShrink,
  enforceBounds,
  toWholeMillis,
];

export interface PostProcessed {
  /** Final whole-millicore allocation. */
  alloc: Float64Array;
  /** Per partition, the flags of the processors that changed its value. */
  marks: Uint8Array;
}

/**
 * Apply the list in order, note who changed what, then re-check the invariants and repair.
 * `into` / `marks` receive the result (allocated when not given); `scratch` is two buffers
 * the steps ping-pong between (allocated when not given).
 */
export function runPostProcessors(
  frame: AllocationFrame,
  list: readonly PostProcessor[] = defaultPostProcessors,
  into?: Float64Array,
  marksInto?: Uint8Array,
  scratch?: [Float64Array, Float64Array],
): PostProcessed {
  const n = frame.ideal.length;
  const marks = marksInto ?? new Uint8Array(n);
  marks.fill(0);
  const result = into ?? new Float64Array(n);
  const bufs =
    scratch && scratch[0].length === n && scratch[1].length === n
      ? scratch
      : [new Float64Array(n), new Float64Array(n)];
  let k = 0;
  let within: boolean;
  if (list === defaultPostProcessors) {
    within = runDefaultList(frame, result, marks, bufs[0]!, bufs[1]!);
    k = list.length & 1;
  } else {
    let cur = frame.ideal;
    for (const p of list) {
      const next = bufs[k]!;
      k ^= 1;
      p.apply(frame, cur, next);
      if (p.flag !== 0)
        for (let i = 0; i < n; i++) if (Math.abs(next[i]! - cur[i]!) > SAME) marks[i]! |= p.flag;
      cur = next;
    }
    result.set(cur);
    within = withinBounds(frame, result);
  }
  if (!within) {
    const tmp = bufs[k]!;
    enforceBounds.apply(frame, result, tmp);
    toWholeMillis.apply(frame, tmp, bufs[k ^ 1]!);
    const fixed = bufs[k ^ 1]!;
    trimToCapacity(frame, fixed);
    for (let i = 0; i < n; i++) if (fixed[i] !== result[i]) marks[i]! |= Marks.boundsFixed;
    result.set(fixed);
  }
  return { alloc: result, marks };
}

/**
 * The default list (dead-band, shrink limit, bounds, whole millicores) in two passes instead of
 * one per processor and one per processor's marks: the same arithmetic in the same order, so
 * the same values and marks (postprocess.test.ts checks it against the list run one processor
 * at a time). Writes the result into `result` and returns withinBounds of it.
 * `shrunk` and `bounded` are scratch of the frame's length.
 */
function runDefaultList(
  f: AllocationFrame,
  result: Float64Array,
  marks: Uint8Array,
  shrunk: Float64Array,
  bounded: Float64Array,
): boolean {
  const { ideal, prev: prevs, prevNeed, lo: los, hi: his, importance } = f;
  const n = ideal.length;
  const band = f.deadbandCpuMillis;
  const useBand = band > 0;
  const keep = 1 - f.maxShrinkFraction;
  const growth = new Float64Array(6);
  // the marks as locals: an exported constant is read through a cell, with a check, at each use
  const DEADBAND = Marks.deadband;
  const SHRINK_LIMITED = Marks.shrinkLimited;
  const BOUNDS_FIXED = Marks.boundsFixed;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = ideal[i]!;
    const prev = prevs[i]!;
    const hi = his[i]!;
    const lo = los[i]!;
    let m = 0;
    let v = x;
    let ref = lo; // what growth is measured from (growthOf)
    if (!Number.isNaN(prev)) {
      // deadband
      if (useBand && Math.abs(v - prev) < band) v = prev;
      if (Math.abs(v - x) > SAME) m = DEADBAND;
      // limitShrink
      const need = prevNeed[i]!;
      const floor = Math.min(prev, Number.isNaN(need) ? prev : need, hi) * keep;
      if (v < floor) {
        if (Math.abs(floor - v) > SAME) m |= SHRINK_LIMITED;
        v = floor;
      }
      ref = Math.min(Math.max(prev, lo), hi);
    }
    shrunk[i] = v;
    // enforceBounds: within [lo, hi], the sum and each level's growth
    if (!(v >= lo)) v = lo; // also catches NaN
    if (v > hi) v = hi;
    bounded[i] = v;
    sum += v;
    if (v > ref) growth[importance[i]!]! += v - ref; // only what grew (takeBackExcess)
    marks[i] = m;
  }
  // enforceBounds: the excess back, from growth (in the pass below when growth covers it)
  const excess = sum - f.capacityCpuMillis;
  const take = new Float64Array(6);
  let taking = false;
  if (excess > SAME) {
    const left = levelTakes(growth, excess, take);
    taking = take.some((k) => k !== 0);
    if (left > SAME) {
      if (taking) takeGrowth(f, bounded, take);
      takeInProportion(f, bounded, left);
      taking = false;
    }
  }
  // bounds' marks, toWholeMillis, withinBounds
  const capacity = f.capacityCpuMillis;
  let total = 0;
  let within = true;
  for (let i = 0; i < n; i++) {
    let b = bounded[i]!;
    const lo = los[i]!;
    const hi = his[i]!;
    if (taking) {
      const k = take[importance[i]!] ?? 0;
      if (k !== 0) {
        const prev = prevs[i]!;
        const g = b - (Number.isNaN(prev) ? lo : Math.min(Math.max(prev, lo), hi)); // growthOf
        if (g > 0) b = b - g * k;
      }
    }
    if (Math.abs(b - shrunk[i]!) > SAME) marks[i]! |= BOUNDS_FIXED;
    const v = Math.floor(b + FLOOR_EPSILON);
    result[i] = v;
    if (!Number.isInteger(v) || v < Math.floor(lo + FLOOR_EPSILON) || v > hi) within = false;
    total += v;
  }
  return within && total <= capacity;
}

/** Every value a whole number in [floor(lo), hi] and the sum within capacity. */
export function withinBounds(frame: AllocationFrame, alloc: Float64Array): boolean {
  let sum = 0;
  for (let i = 0; i < alloc.length; i++) {
    const v = alloc[i]!;
    if (!Number.isInteger(v) || v < Math.floor(frame.lo[i]! + FLOOR_EPSILON) || v > frame.hi[i]!)
      return false;
    sum += v;
  }
  return sum <= frame.capacityCpuMillis;
}

/** Last resort after flooring: take whole millicores from the largest surplus until it fits. */
function trimToCapacity(frame: AllocationFrame, alloc: Float64Array): void {
  let sum = 0;
  for (let i = 0; i < alloc.length; i++) sum += alloc[i]!;
  while (sum > frame.capacityCpuMillis) {
    let best = -1;
    let bestSurplus = 0;
    for (let i = 0; i < alloc.length; i++) {
      const surplus = alloc[i]! - Math.floor(frame.lo[i]! + FLOOR_EPSILON);
      if (surplus > bestSurplus) {
        best = i;
        bestSurplus = surplus;
      }
    }
    if (best < 0) break;
    const take = Math.min(bestSurplus, sum - frame.capacityCpuMillis);
    alloc[best] = alloc[best]! - take;
    sum -= take;
  }
}
