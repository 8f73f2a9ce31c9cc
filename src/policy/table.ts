// The step's columnar contract: partitions and their throughput as columns (struct of arrays,
// index i = the i-th spec), so a step reads typed arrays instead of 10,000 objects and a Map.
// A PartitionTable is built once per spec list and reused while the list does not change; a
// ThroughputColumns is filled once per cycle (by the manager's sample phase, or from a Map by
// `throughputColumnsOf`). Object views (a Throughput, a Directive, a Decision) are built only
// for the readers that want one (the API, a log line, the `why`). Pure.
import type { PartitionId, PartitionSpec, Throughput } from "../core/model.ts";
import {
  GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO,
  importanceOf,
  maxOf,
  minOf,
  weightDivisors,
} from "./rules.ts";

/** The partitions one step allocates, as columns aligned with `specs`. Read-only once built. */
export interface PartitionTable {
  readonly size: number;
  /** The specs the columns were built from (the object view: the `why`, the API). */
  readonly specs: readonly PartitionSpec[];
  readonly ids: readonly PartitionId[];
  /** Guarantee and limit in whole millicores (rules.ts minOf, maxOf). */
  readonly minCpuMillis: Float64Array;
  /** The entitlement's limit: the configured max, the min for a `held` partition. */
  readonly maxCpuMillis: Float64Array;
  /**
   * The configured max (rules.ts maxOf), what a cap and a CPU count are made from: maxCpuMillis,
   * except on a `held` row, whose maxCpuMillis is its guarantee.
   */
  readonly limitCpuMillis: Float64Array;
  readonly weight: Float64Array;
  /** 1..5 (rules.ts importanceOf). */
  readonly importance: Uint8Array;
  /** 1 = kind "batch". */
  readonly batch: Uint8Array;
  /** 1 = configured `capped`. */
  readonly capped: Uint8Array;
  /** 1 = `held` to its guarantee (PartitionSpec.held): its maxCpuMillis column is its min. */
  readonly held: Uint8Array;
  /** Goal in packets/s; NaN = none. */
  readonly goalPacketsPerSec: Float64Array;
  /** Weight divisor by importance (index 1..5: rules.ts weightDivisors of these specs). */
  readonly weightDivisors: Float64Array;
  /** The same when goals are met by cycles (GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO; divisorsFor). */
  readonly weightDivisorsByCycles: Float64Array;
}

/** The weight divisors for an importance ratio (rules.ts importanceWeightRatioFor). */
export const divisorsFor = (
  t: Pick<PartitionTable, "weightDivisors" | "weightDivisorsByCycles">,
  ratio: number,
): Float64Array =>
  ratio === GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO ? t.weightDivisorsByCycles : t.weightDivisors;

/** The columns of `specs` (O(N); build it when the spec list changes, not every cycle). */
export function partitionTable(specs: readonly PartitionSpec[]): PartitionTable {
  const n = specs.length;
  const f = new Float64Array(n * 5);
  const u = new Uint8Array(n * 4);
  const t: PartitionTable = {
    size: n,
    specs,
    ids: specs.map((s) => s.id),
    minCpuMillis: f.subarray(0, n),
    maxCpuMillis: f.subarray(n, 2 * n),
    weight: f.subarray(2 * n, 3 * n),
    goalPacketsPerSec: f.subarray(3 * n, 4 * n),
    limitCpuMillis: f.subarray(4 * n, 5 * n),
    importance: u.subarray(0, n),
    batch: u.subarray(n, 2 * n),
    capped: u.subarray(2 * n, 3 * n),
    held: u.subarray(3 * n, 4 * n),
    weightDivisors: weightDivisors(specs),
    weightDivisorsByCycles: weightDivisors(
      specs,
      new Float64Array(6),
      GOAL_CYCLES_IMPORTANCE_WEIGHT_RATIO,
    ),
  };
  for (let i = 0; i < n; i++) {
    const s = specs[i]!;
    t.minCpuMillis[i] = minOf(s);
    t.limitCpuMillis[i] = maxOf(s);
    t.maxCpuMillis[i] = s.held ? minOf(s) : t.limitCpuMillis[i]!;
    t.weight[i] = s.weight;
    t.importance[i] = importanceOf(s);
    t.batch[i] = s.kind === "batch" ? 1 : 0;
    t.capped[i] = s.capped ? 1 : 0;
    t.held[i] = s.held ? 1 : 0;
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
   * The objects the columns were filled from that `exact` cannot rebuild (`throughputAt`
   * returns these, so a reader sees every field, `disagreement` and `congestionFrom`
   * included); null rows where `exact` has the row.
   */
  readonly objects?: ReadonlyArray<Throughput | null>;
  /**
   * What rebuilds a row's object exactly as it was filled from (`throughputColumnsOf`), for
   * the rows whose object has the shape `throughputFromSamples` makes: `size` × 4 numbers,
   * the row's shape code (0 = not kept here; SHAPE_*), then its `cpuWindowMs`,
   * `ingressBytesPerSec` and `egressBytesPerSec`. The cycle records hold the columns, not a
   * Throughput object per partition per record (docs/performance.md).
   */
  readonly exact?: Float64Array;
}

/** The keys of a Throughput as `throughputFromSamples` makes it, in its order. */
const SAMPLED_KEYS = [
  "partition",
  "windowMs",
  "offeredPacketsPerSec",
  "servedPacketsPerSec",
  "droppedPacketsPerSec",
  "cpuCores",
  "throttledFraction",
  "rawVelocityPacketsPerCpuSec",
  "cpuDelayFraction",
  "source",
] as const;
/** Keys it may add after those, in this order (each a number when present). */
const SAMPLED_OPTIONAL_KEYS = ["ingressBytesPerSec", "egressBytesPerSec", "cpuWindowMs"] as const;
const THROUGHPUT_SOURCES: readonly Throughput["source"][] = ["host", "agent", "sim"];

// Bits of a row's shape code in `exact`: 0 = the row's object is not of this shape.
const SHAPE_KEPT = 1;
/** rawVelocityPacketsPerCpuSec / cpuDelayFraction were numbers (else null). */
const SHAPE_VELOCITY = 2;
const SHAPE_DELAY = 4;
/** ingressBytesPerSec, egressBytesPerSec, cpuWindowMs present (SAMPLED_OPTIONAL_KEYS' order). */
const SHAPE_OPTIONAL_SHIFT = 3;
/** THROUGHPUT_SOURCES index × this. */
const SHAPE_SOURCE = 64;

/**
 * The shape code of `tp` when it is exactly what `throughputFromSamples` makes for `partition`
 * (those own keys in that order, numbers where numbers go, a known source): its columns and
 * this code rebuild an object that is equal to it and JSON.stringify's it to the same text.
 * 0 otherwise (another order, another key, a value of another type), and the object is kept.
 */
export function sampledShape(tp: Throughput, partition: PartitionId): number {
  const o = tp as unknown as Record<string, unknown>;
  let k = 0;
  let opt = 0;
  let shape = SHAPE_KEPT;
  for (const key in o) {
    if (k < SAMPLED_KEYS.length) {
      if (key !== SAMPLED_KEYS[k]) return 0;
      k++;
      continue;
    }
    while (opt < SAMPLED_OPTIONAL_KEYS.length && SAMPLED_OPTIONAL_KEYS[opt] !== key) opt++;
    if (opt === SAMPLED_OPTIONAL_KEYS.length || typeof o[key] !== "number") return 0;
    shape |= 1 << (SHAPE_OPTIONAL_SHIFT + opt);
    opt++;
  }
  if (k < SAMPLED_KEYS.length || tp.partition !== partition) return 0;
  if (
    typeof tp.windowMs !== "number" ||
    typeof tp.offeredPacketsPerSec !== "number" ||
    typeof tp.servedPacketsPerSec !== "number" ||
    typeof tp.droppedPacketsPerSec !== "number" ||
    typeof tp.cpuCores !== "number" ||
    typeof tp.throttledFraction !== "number"
  )
    return 0;
  const v = tp.rawVelocityPacketsPerCpuSec;
  if (typeof v === "number") shape |= SHAPE_VELOCITY;
  else if (v !== null) return 0;
  const d = tp.cpuDelayFraction;
  if (typeof d === "number") shape |= SHAPE_DELAY;
  else if (d !== null) return 0;
  const source = THROUGHPUT_SOURCES.indexOf(tp.source);
  if (source < 0) return 0;
  return shape + source * SHAPE_SOURCE;
}

const COLUMNS = 8;

/** Empty columns for `n` partitions (no data anywhere until set). */
export function throughputColumns(
  n: number,
  objects?: ReadonlyArray<Throughput | null>,
  exact?: Float64Array,
): ThroughputColumns {
  const f = new Float64Array(n * COLUMNS);
  // column k of f: subarray, not a closure made per call (a cycle's closure loses its optimised
  // code at each mark-compact, and TurboFan compiles it again: `overhead-ab --trace-opt`)
  return {
    size: n,
    has: new Uint8Array(n),
    windowMs: f.subarray(0, n),
    offeredPacketsPerSec: f.subarray(n, 2 * n),
    servedPacketsPerSec: f.subarray(2 * n, 3 * n),
    droppedPacketsPerSec: f.subarray(3 * n, 4 * n),
    cpuCores: f.subarray(4 * n, 5 * n),
    throttledFraction: f.subarray(5 * n, 6 * n),
    cpuDelayFraction: f.subarray(6 * n, 7 * n),
    rawVelocityPacketsPerCpuSec: f.subarray(7 * n, 8 * n),
    ...(objects ? { objects } : {}),
    ...(exact ? { exact } : {}),
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
 * by key. Keys no spec has are ignored. A row whose object has `throughputFromSamples`' shape
 * is kept as numbers (`exact`), any other object as itself (`objects`), so `throughputAt`
 * gives back an object equal to the one put in, with the same JSON text.
 */
export function throughputColumnsOf(
  table: PartitionTable,
  throughput: ReadonlyMap<PartitionId, Throughput>,
): ThroughputColumns {
  const n = table.size;
  // the join's state, and module functions (a forEach with `this`), not closures made per
  // call: see throughputColumns
  const j: ColumnsJoin = {
    n,
    ids: table.ids,
    exact: new Float64Array(n * 4),
    objects: null,
    c: throughputColumns(n),
    i: 0,
    matched: 0,
  };
  throughput.forEach(joinEntry, j);
  if (j.matched < throughput.size)
    for (let k = 0; k < n; k++)
      if (j.c.has[k] === 0) {
        const tp = throughput.get(j.ids[k]!);
        if (tp) putRow(j, k, tp);
      }
  const { c, objects, exact } = j;
  return objects === null ? { ...c, exact } : { ...c, objects, exact };
}

/** throughputColumnsOf's walk: where it is in the table, and what it has written. */
interface ColumnsJoin {
  n: number;
  ids: readonly PartitionId[];
  exact: Float64Array;
  objects: Array<Throughput | null> | null;
  c: ThroughputColumns;
  /** The next row the walk may place an entry at. */
  i: number;
  /** Entries placed by the walk. */
  matched: number;
}

/** One map entry of the merge join (throughputColumnsOf). */
function joinEntry(this: ColumnsJoin, tp: Throughput, id: PartitionId): void {
  if (this.i === this.n) return; // out of spec order from here on (or no such spec): looked up after
  // specs without data this cycle sit between two entries: they stay empty
  while (this.i < this.n && this.ids[this.i] !== id) this.i++;
  if (this.i === this.n) return;
  putRow(this, this.i++, tp);
  this.matched++;
}

/** Row k's window: its columns, and its exact figures or the object itself. */
function putRow(j: ColumnsJoin, k: number, tp: Throughput): void {
  const n = j.n;
  setThroughput(j.c, k, tp);
  const shape = sampledShape(tp, j.ids[k]!);
  if (shape === 0) {
    j.objects ??= new Array(n).fill(null);
    j.objects[k] = tp;
    return;
  }
  const exact = j.exact;
  exact[k] = shape;
  if (tp.cpuWindowMs !== undefined) exact[n + k] = tp.cpuWindowMs;
  if (tp.ingressBytesPerSec !== undefined) exact[2 * n + k] = tp.ingressBytesPerSec;
  if (tp.egressBytesPerSec !== undefined) exact[3 * n + k] = tp.egressBytesPerSec;
}

/** Whether row `i` holds a window (what throughputAt would give non-null for), building nothing. */
export function hasThroughputAt(c: ThroughputColumns, i: number): boolean {
  return c.has[i] === 1;
}

/**
 * A reusable Throughput that throughputInto fills: every key present, an absent optional one
 * undefined (so it reads as a Throughput whose optional keys are missing, but its JSON differs:
 * it is for reading fields, never for keeping or serialising).
 */
export type ThroughputScratch = Throughput;

/** A scratch object for throughputInto (one per reader). */
export function throughputScratch(): ThroughputScratch {
  return {
    partition: "",
    windowMs: 0,
    offeredPacketsPerSec: 0,
    servedPacketsPerSec: 0,
    droppedPacketsPerSec: 0,
    cpuCores: 0,
    throttledFraction: 0,
    rawVelocityPacketsPerCpuSec: null,
    cpuDelayFraction: undefined,
    source: "host",
    ingressBytesPerSec: undefined,
    egressBytesPerSec: undefined,
    cpuWindowMs: undefined,
  };
}

/**
 * Row `i`'s values as throughputAt gives them, written into `out` instead of a new object (a
 * reader that only reads fields, once a cycle per partition: the metrics): the kept object
 * itself when the row holds one, null when the row has no data. `out` is overwritten by the
 * next call; every field throughputAt's object would lack is undefined in it.
 */
export function throughputInto(
  c: ThroughputColumns,
  i: number,
  partition: PartitionId,
  out: ThroughputScratch,
): Throughput | null {
  if (c.has[i] !== 1) return null;
  const kept = c.objects?.[i];
  if (kept) return kept;
  const d = c.cpuDelayFraction[i]!;
  const v = c.rawVelocityPacketsPerCpuSec[i]!;
  const shape = c.exact?.[i] ?? 0;
  out.partition = partition;
  out.windowMs = c.windowMs[i]!;
  out.offeredPacketsPerSec = c.offeredPacketsPerSec[i]!;
  out.servedPacketsPerSec = c.servedPacketsPerSec[i]!;
  out.droppedPacketsPerSec = c.droppedPacketsPerSec[i]!;
  out.cpuCores = c.cpuCores[i]!;
  out.throttledFraction = c.throttledFraction[i]!;
  out.ingressBytesPerSec = undefined;
  out.egressBytesPerSec = undefined;
  out.cpuWindowMs = undefined;
  if (shape > 0) {
    const n = c.size;
    const e = c.exact!;
    out.rawVelocityPacketsPerCpuSec = shape & SHAPE_VELOCITY ? v : null;
    out.cpuDelayFraction = shape & SHAPE_DELAY ? d : null;
    out.source = THROUGHPUT_SOURCES[Math.floor(shape / SHAPE_SOURCE)]!;
    if (shape & (1 << SHAPE_OPTIONAL_SHIFT)) out.ingressBytesPerSec = e[2 * n + i]!;
    if (shape & (2 << SHAPE_OPTIONAL_SHIFT)) out.egressBytesPerSec = e[3 * n + i]!;
    if (shape & (4 << SHAPE_OPTIONAL_SHIFT)) out.cpuWindowMs = e[n + i]!;
    return out;
  }
  out.rawVelocityPacketsPerCpuSec = Number.isNaN(v) ? null : v;
  out.cpuDelayFraction = Number.isNaN(d) ? undefined : d;
  out.source = "host";
  return out;
}

/**
 * Row `i` as a Throughput: the object it was filled from (kept, or rebuilt from `exact`: a new
 * object, equal to it), else a view of the columns; null = no data.
 */
export function throughputAt(
  c: ThroughputColumns,
  i: number,
  partition: PartitionId,
): Throughput | null {
  if (c.has[i] !== 1) return null;
  const kept = c.objects?.[i];
  if (kept) return kept;
  const d = c.cpuDelayFraction[i]!;
  const v = c.rawVelocityPacketsPerCpuSec[i]!;
  const shape = c.exact?.[i] ?? 0;
  if (shape > 0) {
    const n = c.size;
    const e = c.exact!;
    const tp: Throughput = {
      partition,
      windowMs: c.windowMs[i]!,
      offeredPacketsPerSec: c.offeredPacketsPerSec[i]!,
      servedPacketsPerSec: c.servedPacketsPerSec[i]!,
      droppedPacketsPerSec: c.droppedPacketsPerSec[i]!,
      cpuCores: c.cpuCores[i]!,
      throttledFraction: c.throttledFraction[i]!,
      rawVelocityPacketsPerCpuSec: shape & SHAPE_VELOCITY ? v : null,
      cpuDelayFraction: shape & SHAPE_DELAY ? d : null,
      source: THROUGHPUT_SOURCES[Math.floor(shape / SHAPE_SOURCE)]!,
    };
    if (shape & (1 << SHAPE_OPTIONAL_SHIFT)) tp.ingressBytesPerSec = e[2 * n + i]!;
    if (shape & (2 << SHAPE_OPTIONAL_SHIFT)) tp.egressBytesPerSec = e[3 * n + i]!;
    if (shape & (4 << SHAPE_OPTIONAL_SHIFT)) tp.cpuWindowMs = e[n + i]!;
    return tp;
  }
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
