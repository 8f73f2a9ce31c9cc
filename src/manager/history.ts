// The manager's cycle history: the latest records for readers (API, dashboard), bounded by
// bytes as well as by count, so its memory does not grow with the partition count (600 records
// of 10,000 partitions would hold over 2 GB, half of V8's default heap limit).
import type { CycleRecord } from "../core/model.ts";
import { partitionColumnsOf } from "./cycle-partitions.ts";
import { RecordEntry } from "./record-entry.ts";

/** Records kept at most, whatever their size (60 s at the default 10 cycles/s). */
export const DEFAULT_HISTORY_SIZE = 600;

/**
 * Bytes the history may hold by default (`historyMaxBytes`), by estimateRecordBytes: all 600
 * records up to 8 partitions, about 54 of 100 (5.4 s at 10 cycles/s), 5 of 1,000; at
 * 10,000 partitions one record is over the bound by itself, so the history keeps only the
 * latest. 4 MiB, not 16 MiB as before: at 100 partitions the larger history cost about 6 MB of
 * resident memory against `weir run`'s 80 MB budget (docs/performance.md); a deployment that
 * wants a longer first fill for the dashboard sets `historyMaxBytes`.
 */
export const DEFAULT_HISTORY_MAX_BYTES = 4 * 2 ** 20;

/**
 * What one record holds on the heap, per part, in bytes (V8 on x64 as Node 20 ships it).
 * Measured with the manager's own records (100, 300, 1,000 and 10,000 simulated partitions,
 * weir's policy, 10–300 records kept): heap and external memory after two full GCs, then again
 * after dropping each part from every record in turn — a whole record 678–766 bytes per
 * partition (the most at 100 partitions); decisions 250–306 (with the step's columns they keep
 * for `why`), throughputs 205–211, directives 122–145, entries 101–115. The figures below are
 * the largest seen, so the bound holds at every size. `weir bench memory-scale` re-measures
 * the whole record (docs/performance.md). Since a record holds its throughputs as a row of the
 * cycle's columns (record-entry.ts) it holds less than this estimate (405 bytes per partition
 * per record measured at 100 partitions, 369 at 10,000, 2026-12-03): the bound over-counts.
 */
export const RECORD_BYTES = {
  /** The record itself, its timings and partitions array. */
  record: 200,
  /** A partition's entry in the record (id, status, written list). */
  entry: 115,
  /** A Throughput (numbers, source). */
  throughput: 211,
  /** A policy decision, with its share of the step's arrays it keeps for `why`. */
  decision: 300,
  /** A directive. */
  directive: 145,
  /** One written file's name (the actuator's file names are shared strings: the list's slot). */
  written: 16,
  /** An error on the entry (the same object across records while it lasts: a reference). */
  error: 16,
} as const;

/** The heap a record holds, estimated from its shape with RECORD_BYTES (no traversal of values). */
export function estimateRecordBytes(record: CycleRecord): number {
  let bytes = RECORD_BYTES.record;
  // a record of the manager's: the same sum from its columns, making no entry
  const c = partitionColumnsOf(record);
  if (c !== undefined) {
    for (let k = 0; k < c.size; k++) {
      bytes += RECORD_BYTES.entry + (c.written[k]?.length ?? 0) * RECORD_BYTES.written;
      if (c.hasThroughput(k)) bytes += RECORD_BYTES.throughput;
      if (c.hasDecision(k)) bytes += RECORD_BYTES.decision;
      if (c.status[k] !== "gone" && c.directives[k]) bytes += RECORD_BYTES.directive;
      if (c.errors?.[k]) bytes += RECORD_BYTES.error;
    }
    return bytes;
  }
  for (const p of record.partitions) {
    bytes += RECORD_BYTES.entry + p.written.length * RECORD_BYTES.written;
    // an entry of the manager's says so without building its throughput (a new object a read)
    if (p instanceof RecordEntry ? p.hasThroughput : p.throughput) bytes += RECORD_BYTES.throughput;
    if (p.decision) bytes += RECORD_BYTES.decision;
    if (p.directive) bytes += RECORD_BYTES.directive;
    if (p.error) bytes += RECORD_BYTES.error;
  }
  return bytes;
}

export interface HistoryLimits {
  /** Records at most (default DEFAULT_HISTORY_SIZE). */
  maxRecords?: number;
  /** Estimated bytes at most (default DEFAULT_HISTORY_MAX_BYTES); the newest record always stays. */
  maxBytes?: number;
}

/** Newest last; the oldest records go first once either limit is passed. */
export class CycleHistory {
  private readonly records: CycleRecord[] = [];
  private readonly sizes: number[] = [];
  /** Index of the oldest record kept (records before it are dropped lazily, in batches). */
  private head = 0;
  private total = 0;
  readonly maxRecords: number;
  readonly maxBytes: number;

  constructor(limits: HistoryLimits = {}) {
    this.maxRecords = Math.max(1, Math.floor(limits.maxRecords ?? DEFAULT_HISTORY_SIZE));
    this.maxBytes = Math.max(0, limits.maxBytes ?? DEFAULT_HISTORY_MAX_BYTES);
  }

  push(record: CycleRecord): void {
    const size = estimateRecordBytes(record);
    this.records.push(record);
    this.sizes.push(size);
    this.total += size;
    while (
      this.records.length - this.head > 1 &&
      (this.records.length - this.head > this.maxRecords || this.total > this.maxBytes)
    ) {
      this.total -= this.sizes[this.head]!;
      this.records[this.head] = undefined as unknown as CycleRecord; // let it go now
      this.head++;
    }
    // compact once the dropped prefix is as long as what is kept (amortised O(1) a push)
    if (this.head > 0 && this.head >= this.records.length - this.head) {
      this.records.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The records kept, oldest first (a copy). */
  list(): CycleRecord[] {
    return this.records.slice(this.head);
  }

  get length(): number {
    return this.records.length - this.head;
  }

  /** Estimated bytes held (estimateRecordBytes of every record kept). */
  get bytes(): number {
    return this.total;
  }
}
