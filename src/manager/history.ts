// The manager's cycle history: the latest records for readers (API, dashboard), bounded by
// bytes as well as by count, so its memory does not grow with the partition count (600 records
// of 10,000 partitions would hold about 4 GB, past V8's default heap limit).
import type { CycleRecord } from "../core/model.ts";

/** Records kept at most, whatever their size (60 s at the default 10 cycles/s). */
export const DEFAULT_HISTORY_SIZE = 600;

/**
 * Bytes the history may hold by default (`historyMaxBytes`), by estimateRecordBytes: all 600
 * records up to about 40 partitions, about 250 of 100, 25 of 1,000, 2 of 10,000.
 */
export const DEFAULT_HISTORY_MAX_BYTES = 16 * 2 ** 20;

/**
 * What one record holds on the heap, per part, in bytes (V8 on x64 as Node 20 ships it).
 * Measured with the manager's own records (1,000 simulated partitions, weir's policy): heap
 * and external memory after a full GC, with 100 records' parts kept, against before — a whole
 * record 666 bytes per partition; its throughputs alone 208, directives 148, entries 114, and
 * decisions 430 including the throughputs the step's reasons keep (so 222 of their own).
 * `weir bench memory-scale` re-measures the whole record (docs/performance.md).
 */
export const RECORD_BYTES = {
  /** The record itself, its timings and partitions array. */
  record: 200,
  /** A partition's entry in the record (id, status, written list). */
  entry: 106,
  /** A Throughput (numbers, source). */
  throughput: 200,
  /** A policy decision, with its share of the step's arrays it keeps for `why`. */
  decision: 222,
  /** A directive. */
  directive: 140,
  /** One written file's name (the actuator's file names are shared strings: the list's slot). */
  written: 16,
  /** An error on the entry (the same object across records while it lasts: a reference). */
  error: 16,
} as const;

/** The heap a record holds, estimated from its shape with RECORD_BYTES (no traversal of values). */
export function estimateRecordBytes(record: CycleRecord): number {
  let bytes = RECORD_BYTES.record;
  for (const p of record.partitions) {
    bytes += RECORD_BYTES.entry + p.written.length * RECORD_BYTES.written;
    if (p.throughput) bytes += RECORD_BYTES.throughput;
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
