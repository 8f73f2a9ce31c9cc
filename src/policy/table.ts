// The step's columnar contract: partitions and their throughput as columns (struct of arrays,
// index i = the i-th spec), so a step reads typed arrays instead of 10,000 objects and a Map.
// A PartitionTable is built once per spec list and reused while the list does not change; a
// ThroughputColumns is filled once per cycle (by the manager's sample phase, or from a Map by
// `throughputColumnsOf`). Object views (a Throughput, a Directive, a Decision) are built only
// for the readers that want one (the API, a log line, the `why`). Pure.
import type { PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import { importanceOf, maxOf, minOf, weightDivisors } from "./rules.ts";

/** The partitions one step allocates, as columns aligned with `specs`. Read-only once built. */
export interface PartitionTable {
  readonly size: number;
  /** The specs the columns were built from (the object view: the `why`, the API). */
  readonly specs: readonly PartitionSpec[];
  readonly ids: readonly PartitionId[];
  /** Guarantee and limit in whole millicores (rules.ts minOf, maxOf). */
  readonly minCpuMillis: Float64Array;
  readonly maxCpuMillis: Float64Array;
  readonly weight: Float64Array;
  /** 1..5 (rules.ts importanceOf). */
  readonly importance: Uint8Array;
  /** 1 = kind "batch". */
  readonly batch: Uint8Array;
  /** 1 = configured `capped`. */
  readonly capped: Uint8Array;
  /** Goal in packets/s; NaN = none. */
  readonly goalPacketsPerSec: Float64Array;
  /** Weight divisor by importance (index 1..5: rules.ts weightDivisors of these specs). */
  readonly weightDivisors: Float64Array;
}

/** The columns of `specs` (O(N); build it when the spec list changes, not every cycle). */
export function partitionTable(specs: readonly PartitionSpec[]): PartitionTable {
  const n = specs.length;
  const f = new Float64Array(n * 4);
  const u = new Uint8Array(n * 3);
  const t: PartitionTable = {
    size: n,
    specs,
    ids: specs.map((s) => s.id),
    minCpuMillis: f.subarray(0, n),
    maxCpuMillis: f.subarray(n, 2 * n),
    weight: f.subarray(2 * n, 3 * n),
    goalPacketsPerSec: f.subarray(3 * n, 4 * n),
    importance: u.subarray(0, n),
    batch: u.subarray(n, 2 * n),
    capped: u.subarray(2 * n, 3 * n),
    weightDivisors: weightDivisors(specs),
  };
  for (let i = 0; i < n; i++) {
    const s = specs[i]!;
    t.minCpuMillis[i] = minOf(s);
    t.maxCpuMillis[i] = maxOf(s);
    t.weight[i] = s.weight;
    t.importance[i] = importanceOf(s);
    t.batch[i] = s.kind === "batch" ? 1 : 0;
    t.capped[i] = s.capped ? 1 : 0;
    t.goalPacketsPerSec[i] = s.goalPacketsPerSec === undefined ? Number.NaN : s.goalPacketsPerSec;
  }
  return t;
}

/** The partition has a goal (rules.ts hasGoal on the column). */
export const hasGoalAt = (t: PartitionTable, i: number): boolean => t.goalPacketsPerSec[i]! > 0;

/**
 * One cycle's throughput per partition as columns aligned with a PartitionTable. A step's
 * decisions keep these columns (their `why` reads them later): fill a fresh one every cycle.
 */
export interface ThroughputColumns {
  readonly size: number;
  /** 1 = the partition has a window this cycle; 0 = no data (the other columns are ignored). */
  readonly has: Uint8Array;
  readonly windowMs: Float64Array;
  readonly offeredPacketsPerSec: Float64Array;
  readonly servedPacketsPerSec: Float64Array;
  readonly droppedPacketsPerSec: Float64Array;
  readonly cpuCores: Float64Array;
  readonly throttledFraction: Float64Array;
  /** NaN = unknown (Throughput.cpuDelayFraction null or absent). */
  readonly cpuDelayFraction: Float64Array;
  /** NaN = null (too little CPU used to tell). */
  readonly rawVelocityPacketsPerCpuSec: Float64Array;
  /**
   * The objects the columns were filled from, when they were (`throughputAt` returns these, so
   * a reader sees every field, `source` and `disagreement` included); else views are built.
   */
  readonly objects?: ReadonlyArray<Throughput | null>;
}

const COLUMNS = 8;

/** Empty columns for `n` partitions (no data anywhere until set). */
export function throughputColumns(
  n: number,
  objects?: ReadonlyArray<Throughput | null>,
): ThroughputColumns {
  const f = new Float64Array(n * COLUMNS);
  const col = (k: number): Float64Array => f.subarray(k * n, (k + 1) * n);
  return {
    size: n,
    has: new Uint8Array(n),
    windowMs: col(0),
    offeredPacketsPerSec: col(1),
    servedPacketsPerSec: col(2),
    droppedPacketsPerSec: col(3),
    cpuCores: col(4),
    throttledFraction: col(5),
    cpuDelayFraction: col(6),
    rawVelocityPacketsPerCpuSec: col(7),
    ...(objects ? { objects } : {}),
  };
}

/** Write one partition's window into row `i`. */
export function setThroughput(c: ThroughputColumns, i: number, tp: Throughput): void {
  c.has[i] = 1;
  c.windowMs[i] = tp.windowMs;
  c.offeredPacketsPerSec[i] = tp.offeredPacketsPerSec;
  c.servedPacketsPerSec[i] = tp.servedPacketsPerSec;
  c.droppedPacketsPerSec[i] = tp.droppedPacketsPerSec;
  c.cpuCores[i] = tp.cpuCores;
  c.throttledFraction[i] = tp.throttledFraction;
  const d = tp.cpuDelayFraction;
  c.cpuDelayFraction[i] = d == null ? Number.NaN : d;
  const v = tp.rawVelocityPacketsPerCpuSec;
  c.rawVelocityPacketsPerCpuSec[i] = v === null ? Number.NaN : v;
}

/**
 * The columns of a throughput map for `table`. The manager fills the map in spec order, so
 * both are walked in step (a merge join: sequential reads, ~2× faster than 10,000 hash lookups
 * here; forEach allocates no iterator results); whatever the walk could not place is looked up
 * by key. Keys no spec has are ignored.
 */
export function throughputColumnsOf(
  table: PartitionTable,
  throughput: ReadonlyMap<PartitionId, Throughput>,
): ThroughputColumns {
  const n = table.size;
  const ids = table.ids;
  const objects: Array<Throughput | null> = new Array(n).fill(null);
  let i = 0;
  let matched = 0;
  throughput.forEach((tp, id) => {
    if (i === n) return; // out of spec order from here on (or no such spec): looked up below
    // specs without data this cycle sit between two entries: they stay null
    while (i < n && ids[i] !== id) i++;
    if (i === n) return;
    objects[i++] = tp;
    matched++;
  });
  if (matched < throughput.size)
    for (let k = 0; k < n; k++)
      if (objects[k] === null) objects[k] = throughput.get(ids[k]!) ?? null;
  const c = throughputColumns(n, objects);
  for (let k = 0; k < n; k++) {
    const tp = objects[k];
    if (tp) setThroughput(c, k, tp);
  }
  return c;
}

/** Row `i` as a Throughput (the object it was filled from, when kept); null = no data. */
export function throughputAt(
  c: ThroughputColumns,
  i: number,
  partition: PartitionId,
): Throughput | null {
  if (c.has[i] !== 1) return null;
  if (c.objects) return c.objects[i] ?? null;
  const d = c.cpuDelayFraction[i]!;
  const v = c.rawVelocityPacketsPerCpuSec[i]!;
  return {
    partition,
    windowMs: c.windowMs[i]!,
    offeredPacketsPerSec: c.offeredPacketsPerSec[i]!,
    servedPacketsPerSec: c.servedPacketsPerSec[i]!,
    droppedPacketsPerSec: c.droppedPacketsPerSec[i]!,
    cpuCores: c.cpuCores[i]!,
    throttledFraction: c.throttledFraction[i]!,
    ...(Number.isNaN(d) ? {} : { cpuDelayFraction: d }),
    rawVelocityPacketsPerCpuSec: Number.isNaN(v) ? null : v,
    source: "host",
  };
}
