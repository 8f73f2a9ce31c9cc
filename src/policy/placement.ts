// Placement: which CPUs each network partition runs on (a cpuset), so that a server wakes on
// a CPU of its own where an idle-class batch partition yields at once, instead of queueing
// behind another server while the other CPU runs only batch (docs/control-law.md, *What the
// weights leave*). Pure: entitlements in, CPU lists out; the caller writes them.
//
// The rules, in order:
// - batch partitions are never placed (they run on every CPU, in the idle class);
// - each network partition needs k = ceil(need ÷ (1,000m × fill)) CPUs (at least 1); one that
//   needs every CPU is not placed;
// - if the network partitions' needs together do not fit the CPUs at `fill`, nothing is
//   placed: under contention the weights share the host, and a placement would only strand
//   CPU;
// - the partitions are packed, heaviest first, each onto its k least loaded CPUs (ties: the
//   CPU with fewer partitions on it, then the lower CPU, so partitions that need nothing yet
//   are spread rather than stacked on CPU 0), a partition's need split evenly over its CPUs;
// - the previous placement is kept while it still fits (every partition has at least its k
//   CPUs, every CPU carries at most 1,000m × fill) and its most loaded CPU carries at most
//   `rebalanceMarginCpuMillis` more than the fresh packing's: placements move rarely, since
//   each move migrates the partition's tasks, but a placement made before the traffic came
//   (every need equal) does not keep the two heaviest partitions on one CPU for good;
// - otherwise the fresh packing is taken; if a CPU of it would carry more than 1,000m × fill,
//   nothing is placed.

/** One partition as placement sees it. */
export interface PlacementRow {
  id: string;
  batch: boolean;
  /** What it should be able to use now, millicores (its entitlement, or more if it uses more). */
  needCpuMillis: number;
}

/** A partition's CPUs (ascending), or null: every CPU (not placed). */
export type PlacedCpus = readonly number[] | null;

export type Placement = ReadonlyMap<string, PlacedCpus>;

export interface PlacementKnobs {
  /** The share of a CPU placement fills at most, 0 < fill ≤ 1. */
  fillFraction: number;
  /**
   * How much more the previous placement's most loaded CPU may carry than a fresh packing's
   * before the partitions are packed again, millicores (Infinity: kept while it fits).
   */
  rebalanceMarginCpuMillis: number;
}

/**
 * Why the placer placed nothing, where one of its rules decided it: fewer than 2 CPUs, the
 * needs together over the CPUs at the fill, or a packing that overfills a CPU. (With no rule
 * against it, nothing is placed also when there is no network row or every one needs every CPU.)
 */
export type NotPlaced = "one-cpu" | "do-not-fit" | "do-not-pack";

export const DEFAULT_PLACEMENT_KNOBS: PlacementKnobs = {
  fillFraction: 0.8,
  rebalanceMarginCpuMillis: 50,
};

const CPU_MILLIS = 1000;

/** CPUs a partition needing `needCpuMillis` is given at `budget` millicores a CPU (at least 1). */
export function cpusNeeded(needCpuMillis: number, budgetCpuMillis: number): number {
  if (!(needCpuMillis > 0)) return 1;
  return Math.max(1, Math.ceil(needCpuMillis / budgetCpuMillis - 1e-9));
}

/**
 * Where each partition runs: `cpus` are the host's CPUs the partitions may use (ascending);
 * `previous` is the placement in force (null: none yet). Returns `previous` itself when it is
 * kept, so a caller can tell "no change" by identity. `notPlaced` hears which rule placed
 * nothing (NotPlaced), so a caller explains the placement without restating the rules.
 */
export function placePartitions(
  rows: readonly PlacementRow[],
  cpus: readonly number[],
  previous: Placement | null,
  knobs: Partial<PlacementKnobs> = DEFAULT_PLACEMENT_KNOBS,
  notPlaced?: (why: NotPlaced) => void,
): Placement {
  const { fillFraction, rebalanceMarginCpuMillis: margin } = {
    ...DEFAULT_PLACEMENT_KNOBS,
    ...knobs,
  };
  if (!(fillFraction > 0 && fillFraction <= 1))
    throw new RangeError(`placement: fillFraction must be in (0, 1], got ${fillFraction}`);
  if (!(margin >= 0))
    throw new RangeError(`placement: rebalanceMarginCpuMillis must be ≥ 0, got ${margin}`);
  const budget = CPU_MILLIS * fillFraction;
  const n = cpus.length;
  const none = (why: NotPlaced): Placement => {
    notPlaced?.(why);
    return new Map(rows.map((r) => [r.id, null]));
  };
  if (n < 2) return none("one-cpu");
  const network = rows.filter((r) => !r.batch);
  let total = 0;
  for (const r of network) total += Math.max(0, r.needCpuMillis);
  if (total > budget * n) return none("do-not-fit");

  const need = new Map(network.map((r) => [r.id, cpusNeeded(r.needCpuMillis, budget)]));
  // a partition that needs every CPU spreads its load over all of them
  const base = new Map<number, number>(cpus.map((c) => [c, 0]));
  for (const r of network)
    if (need.get(r.id)! >= n)
      for (const c of cpus) base.set(c, base.get(c)! + Math.max(0, r.needCpuMillis) / n);

  const kept = previous ? keptPeak(previous, rows, need, cpus, base, budget) : null;
  // no balance to weigh (the manager's hold after a change): a placement that fits is kept
  if (kept !== null && margin === Number.POSITIVE_INFINITY) return previous!;

  const load = new Map(base);
  /** Partitions placed on each CPU so far: equal loads go to the CPU with fewer (idle ones spread). */
  const count = new Map<number, number>(cpus.map((c) => [c, 0]));
  const out = new Map<string, PlacedCpus>();
  for (const r of rows) if (r.batch || need.get(r.id)! >= n) out.set(r.id, null);
  const order = network
    .filter((r) => need.get(r.id)! < n)
    .sort((x, y) => y.needCpuMillis - x.needCpuMillis || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  for (const r of order) {
    const k = need.get(r.id)!;
    const chosen = [...cpus]
      .sort((x, y) => load.get(x)! - load.get(y)! || count.get(x)! - count.get(y)! || x - y)
      .slice(0, k)
      .sort((x, y) => x - y);
    const share = Math.max(0, r.needCpuMillis) / k;
    for (const c of chosen) {
      load.set(c, load.get(c)! + share);
      count.set(c, count.get(c)! + 1);
    }
    out.set(r.id, chosen);
  }
  let peak = 0;
  for (const c of cpus) peak = Math.max(peak, load.get(c)!);
  const packs = peak <= budget + 1e-9;
  if (kept !== null && (!packs || kept - peak <= margin)) return previous!;
  return packs ? out : none("do-not-pack");
}

/**
 * The load of `previous`'s most loaded CPU, millicores, if it still places every row as the
 * rules ask (see the file's head); null if it does not.
 */
function keptPeak(
  previous: Placement,
  rows: readonly PlacementRow[],
  need: ReadonlyMap<string, number>,
  cpus: readonly number[],
  base: ReadonlyMap<number, number>,
  budget: number,
): number | null {
  if (previous.size !== rows.length) return null;
  const load = new Map(base);
  const host = new Set(cpus);
  for (const r of rows) {
    if (!previous.has(r.id)) return null;
    const placed = previous.get(r.id)!;
    const k = r.batch ? cpus.length : need.get(r.id)!;
    if (k >= cpus.length) {
      if (placed !== null) return null;
      continue;
    }
    if (placed === null || placed.length < k || placed.some((c) => !host.has(c))) return null;
    const share = Math.max(0, r.needCpuMillis) / placed.length;
    for (const c of placed) load.set(c, load.get(c)! + share);
  }
  let peak = 0;
  for (const c of cpus) {
    const l = load.get(c)!;
    if (l > budget + 1e-9) return null;
    peak = Math.max(peak, l);
  }
  return peak;
}
