// The core allocation: guarantees first, then demand tier by tier, then the left-over.
// Pure arithmetic on typed arrays indexed like the spec list. O(N) expected (see waterfill.ts).
import { createWaterfillWorkspace, type WaterfillWorkspace, waterfill } from "./waterfill.ts";

/** How a partition takes part in this cycle's allocation. */
export const Mode = {
  /** Network partition with a demand this cycle (or a new one with no data: demand = min). */
  demand: 0,
  /** No throughput this cycle: keeps its previous allocation (tier 0, before every tier). */
  held: 1,
  /** Batch: only its min from the tiers; soaks up left-over up to max. */
  batch: 2,
} as const;

export interface AllocationProblem {
  /** Whole millicores to hand out. */
  capacityCpuMillis: number;
  /** Guarantee (min) and limit (max) per partition, whole millicores, lo ≤ hi. */
  lo: Float64Array;
  hi: Float64Array;
  weight: Float64Array;
  /** 1 (most important) … 5. */
  importance: Uint8Array;
  mode: Uint8Array;
  /** What the tier phase tries to reach: demand clamped into [lo, hi] (held: previous value). */
  target: Float64Array;
  /**
   * Who may take left-over capacity (up to hi): 0 = no; 2 = can use it now (batch, or
   * constrained), served first; 1 = may hold it as spare (unconstrained), gets what 2s leave.
   */
  leftoverEligible: Uint8Array;
  shareLeftover: boolean;
  /** With shareLeftover: serve eligibility 2 before 1 (batch-first), instead of 1 and 2 together. */
  canUseFirst?: boolean;
}

/** Where the result goes (arrays of the partition count; allocated when not given). */
export interface AllocationBuffers {
  alloc: Float64Array;
  effectiveMin: Float64Array;
  leftover: Float64Array;
}

/** Scratch reused between calls (never part of the result); grown as needed. */
export interface AllocationScratch {
  order: Int32Array;
  before: Float64Array;
  ws: WaterfillWorkspace;
  /** The last problem's rows bucketed by importance (see byImportance). */
  tiers: ImportanceBuckets | null;
}

export function createAllocationScratch(size: number): AllocationScratch {
  const n = Math.max(1, size);
  return {
    order: new Int32Array(n),
    before: new Float64Array(n),
    ws: createWaterfillWorkspace(n),
    tiers: null,
  };
}

/**
 * The rows of one importance column bucketed by importance (a stable counting sort: row order
 * within a level) and each level's sum of guarantees, in row order. They depend only on the
 * importance and guarantee columns, which a step's table keeps while the spec list does not
 * change (table.ts: read-only once built), so a scratch keeps them for the same two arrays.
 */
interface ImportanceBuckets {
  importance: Uint8Array;
  lo: Float64Array;
  /** Rows by importance; level t's rows are order[start[t] .. start[t + 1]). */
  order: Int32Array;
  start: Int32Array;
  minByTier: Float64Array;
}

function byImportance(importance: Uint8Array, lo: Float64Array): ImportanceBuckets {
  const n = lo.length;
  const start = new Int32Array(TIERS + 1);
  const minByTier = new Float64Array(TIERS);
  for (let i = 0; i < n; i++) {
    const imp = importance[i]!;
    start[imp + 1]!++;
    minByTier[imp]! += lo[i]!;
  }
  for (let t = 0; t < TIERS; t++) start[t + 1]! += start[t]!;
  const order = new Int32Array(Math.max(1, n));
  const fill = start.slice(0, TIERS);
  for (let i = 0; i < n; i++) order[fill[importance[i]!]!++] = i;
  return { importance, lo, order, start, minByTier };
}

export interface AllocationResult {
  /** The ideal allocation before post-processing (fractional millicores). */
  alloc: Float64Array;
  /** Guarantee actually honoured: lo, or less when the mins do not fit capacity. */
  effectiveMin: Float64Array;
  /** Part of alloc that came from the left-over phase. */
  leftover: Float64Array;
  /** True when the mins did not fit and some were cut (in reverse importance order). */
  guaranteesCut: boolean;
  /** Capacity not allocated at the end (idle left-over, or nobody could use it). */
  idleCpuMillis: number;
  /** The left-over phase ran (else `leftover` is all 0). */
  leftoverShared: boolean;
}

const TIERS = 6; // 0 = held, 1..5 = importance

/**
 * 1. Everyone gets min. If the mins exceed capacity (a config error, or capacity lost), mins
 *    are honoured in importance order and the first tier that does not fit is scaled in
 *    proportion to its mins; less important tiers get nothing. Never above capacity.
 * 2. Held partitions (no data this cycle) get their previous allocation back (tier 0).
 * 3. Tiers 1..5 in order: weighted max-min water-filling of totals toward `target`.
 * 4. Left-over (share mode): split by weight among eligible partitions, up to max.
 */
export function allocate(
  p: AllocationProblem,
  buffers?: AllocationBuffers,
  scratch?: AllocationScratch,
): AllocationResult {
  const n = p.lo.length;
  const capacity = Math.max(0, p.capacityCpuMillis);
  const alloc = buffers?.alloc ?? new Float64Array(n);
  const effectiveMin = buffers?.effectiveMin ?? new Float64Array(n);
  const leftover = buffers?.leftover ?? new Float64Array(n);
  leftover.fill(0);
  const s = scratch && scratch.order.length >= n ? scratch : createAllocationScratch(n);

  // Bucket partitions by tier: held ones (tier 0) in row order, then each importance's others
  // in row order — the importance buckets kept from the last call with the same columns, the
  // held rows taken out of them as they are copied (no jump on a row's mode).
  const { mode, importance, lo } = p;
  let tiers = s.tiers;
  if (tiers === null || tiers.importance !== importance || tiers.lo !== lo) {
    tiers = byImportance(importance, lo);
    s.tiers = tiers;
  }
  const { minByTier } = tiers;
  const order = s.order;
  const counts = new Int32Array(TIERS + 1);
  const HELD = Mode.held; // a local: an exported constant is read through a cell at each use
  let m = 0;
  for (let i = 0; i < n; i++) {
    order[m] = i;
    m += +(mode[i] === HELD) | +(importance[i] === 0); // tier 0 (no importance: never in a table)
  }
  counts[1] = m;
  for (let t = 1; t < TIERS; t++) {
    for (let k = tiers.start[t]!; k < tiers.start[t + 1]!; k++) {
      const i = tiers.order[k]!;
      order[m] = i;
      m += +(mode[i] !== HELD);
    }
    counts[t + 1] = m;
  }

  // 1. Guarantees.
  let sumMin = 0;
  for (let t = 1; t < TIERS; t++) sumMin += minByTier[t]!;
  let guaranteesCut = false;
  let remaining = capacity;
  if (sumMin <= capacity) {
    effectiveMin.set(p.lo); // a block copy, not a loop
    remaining -= sumMin;
  } else {
    guaranteesCut = true;
    // Scale factor per importance: 1 for tiers that fit whole, a fraction for the first
    // that does not, 0 after it.
    const scale = new Float64Array(TIERS);
    let left = capacity;
    for (let t = 1; t < TIERS; t++) {
      const m = minByTier[t]!;
      if (m <= left) {
        scale[t] = 1;
        left -= m;
      } else {
        scale[t] = m > 0 ? left / m : 0;
        left = 0;
      }
    }
    for (let i = 0; i < n; i++) effectiveMin[i] = p.lo[i]! * scale[p.importance[i]!]!;
    let used = 0;
    for (let i = 0; i < n; i++) used += effectiveMin[i]!;
    remaining = Math.max(0, capacity - used);
  }
  alloc.set(effectiveMin);

  // 2 + 3. Held tier, then importance tiers, each water-filled toward its targets.
  const ws = s.ws;
  // Targets are ≥ lo ≥ effectiveMin, so every member starts at or below its target.
  const target = p.target;
  for (let t = 0; t < TIERS && remaining > 0; t++) {
    remaining -= waterfill(
      order,
      counts[t]!,
      counts[t + 1]!,
      alloc,
      target,
      p.weight,
      remaining,
      false,
      alloc,
      ws,
    );
    if (remaining < 0) remaining = 0;
  }

  // 4. Left-over, by weight, up to max. batch-first: first to those who can use it now
  //    (batch, constrained), then what they leave as spare to the others.
  const leftoverShared = p.shareLeftover && remaining > 0;
  if (leftoverShared) {
    const before = s.before;
    before.set(alloc);
    // share: one pass over everyone eligible; batch-first: those who can use it, then the rest
    const passes = p.canUseFirst ? [2, 1] : [0];
    for (const level of passes) {
      if (remaining <= 0) break;
      let m = 0;
      for (let i = 0; i < n; i++) {
        const e = p.leftoverEligible[i]!;
        if (level === 0 ? e >= 1 : e === level) order[m++] = i;
      }
      if (m === 0) continue;
      // lo and out may be the same array: waterfill reads each member's lo before writing it
      remaining -= waterfill(order, 0, m, alloc, p.hi, p.weight, remaining, true, alloc, ws);
      if (remaining < 0) remaining = 0;
    }
    for (let i = 0; i < n; i++) leftover[i] = alloc[i]! - before[i]!;
  }
  return {
    alloc,
    effectiveMin,
    leftover,
    guaranteesCut,
    idleCpuMillis: remaining,
    leftoverShared,
  };
}
