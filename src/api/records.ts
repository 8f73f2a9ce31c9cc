// The cycle records the API answers with: how many /api/cycles returns, and the JSON bytes and
// SSE frame made once per record and shared by every request and stream.
import type { CycleRecord } from "../core/model.ts";

export const DEFAULT_CYCLES_LIMIT = 60;
export const MAX_CYCLES_LIMIT = 1000;
/**
 * /api/cycles answers at most this many partition entries (records × partitions per record):
 * the dashboard's 600 records up to 100 partitions, 6 records at 10,000 partitions. The answer
 * is built on the event loop the cycle runs on. Replays of /api/events use the same budget.
 */
export const MAX_CYCLES_PARTITION_ENTRIES = 60_000;

/**
 * Per record, something made from it once (its JSON text, its SSE frame) and reused by every
 * request and stream, kept for the newest records up to `budget` partition entries (a record
 * larger than the budget alone is still kept, as the only one) and, given `oldestKept` (the
 * cycle of the oldest record the view still holds), only while the view holds the record: a
 * record the history has dropped can be asked for by no request or replay again, and an entry
 * of this cache keeps it (the key) alive with its made value. Without that the budget alone let
 * the cache hold records long after the history's `historyMaxBytes` had dropped them: at 5
 * partitions 12,000 records (20 minutes at 10 cycles/s) where the history keeps 600.
 * Records are not changed once published; a decision's `why` is built by its toJSON, so this
 * is where the cost is.
 */
export class RecordCache<T> {
  readonly #made = new Map<CycleRecord, { value: T; entries: number }>();
  #entries = 0;
  constructor(
    readonly budget: number,
    readonly make: (record: CycleRecord) => T,
    /** The cycle of the oldest record the view holds (undefined: none); asked on a miss only. */
    readonly oldestKept?: () => number | undefined,
  ) {}
  get(record: CycleRecord): T {
    const hit = this.#made.get(record);
    if (hit) return hit.value;
    const entries = Math.max(1, record.partitions.length);
    const value = this.make(record);
    this.#made.set(record, { value, entries });
    this.#entries += entries;
    const oldest = this.oldestKept?.();
    // oldest first (records are mostly made in cycle order): drop while over the budget or
    // the record is older than any the view holds; never the record just made
    for (const [r, m] of this.#made) {
      if (r === record) break;
      if (this.#entries <= this.budget && !(oldest !== undefined && r.cycle < oldest)) break;
      this.#made.delete(r);
      this.#entries -= m.entries;
    }
    return value;
  }
  /** Records held now. */
  get size(): number {
    return this.#made.size;
  }
}

const encoder = new TextEncoder();
/**
 * The record's JSON as UTF-8 bytes, and its SSE frame as bytes — `event: cycle`, the JSON as
 * one `data:` line (JSON has no raw newline), its cycle as `id:`, in hono's writeSSE order.
 * Bytes, not strings: every answer and stream writes the same buffers without encoding again.
 */
export function recordCaches(oldestKept?: () => number | undefined): {
  json: RecordCache<Uint8Array>;
  frame: RecordCache<Uint8Array>;
} {
  const json = new RecordCache(
    MAX_CYCLES_PARTITION_ENTRIES,
    (r) => encoder.encode(JSON.stringify(r)),
    oldestKept,
  );
  const frame = new RecordCache(
    MAX_CYCLES_PARTITION_ENTRIES / 3,
    (r) =>
      Buffer.concat([
        encoder.encode("event: cycle\ndata: "),
        json.get(r),
        encoder.encode(`\nid: ${r.cycle}\n\n`),
      ]),
    oldestKept,
  );
  return { json, frame };
}

/**
 * A body made of byte chunks written one after another as the client reads (no concatenated
 * copy): /api/cycles sends each record's cached JSON bytes between its brackets and commas.
 */
export function chunkedBody(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (i < chunks.length) ctl.enqueue(chunks[i++]!);
      else ctl.close();
    },
  });
}

/** How many of the last records /api/cycles returns for `limit`, within the entry budget. */
export function cyclesToReturn(records: readonly CycleRecord[], limit: number): number {
  let count = 0;
  let entries = 0;
  for (let i = records.length - 1; i >= 0 && count < limit; i--) {
    entries += Math.max(1, records[i]!.partitions.length);
    if (entries > MAX_CYCLES_PARTITION_ENTRIES && count > 0) break;
    count++;
  }
  return count;
}
