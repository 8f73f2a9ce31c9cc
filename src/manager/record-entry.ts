// One partition's entry in a cycle record, holding its throughput as a row of the cycle's
// throughput columns (the policy step's own, which its decisions keep anyway) instead of a
// Throughput object: a record is kept for the history's length, so every object in it is
// promoted to V8's old generation and marked until the record goes; a Throughput object
// per partition per record was about half of what a record put there (docs/performance.md).
// `throughput` is built from the row each time it is read (an object equal to the one the
// cycle made, with the same JSON text: policy/table.ts throughputAt); toJSON gives the
// entry's fields in the order a plain entry had them, so the API's JSON is byte for byte what
// it was.
import type { CycleRecord, PartitionId, Throughput, WeirErrorInfo } from "../core/model.ts";
import {
  hasThroughputAt,
  type ThroughputColumns,
  type ThroughputScratch,
  throughputAt,
  throughputInto,
  throughputScratch,
} from "../policy/table.ts";

type Entry = CycleRecord["partitions"][number];

/** What peekThroughput lends (one for every entry: the reader reads it before the next call). */
const SCRATCH: ThroughputScratch = throughputScratch();

export class RecordEntry implements Entry {
  readonly id: PartitionId;
  status: Entry["status"];
  decision: Entry["decision"];
  directive: Entry["directive"];
  written: string[];
  declare error?: WeirErrorInfo;
  /** The cycle's columns and this partition's row in them (row < 0: `#object` holds it). */
  #columns: ThroughputColumns | null;
  #row: number;
  #object: Throughput | null;

  /**
   * `columns` and `row` where the cycle's columns hold the partition's window (they must hold
   * `object`'s values, and are not changed later); otherwise `object` itself (or null).
   */
  constructor(
    id: PartitionId,
    status: Entry["status"],
    throughput: { columns: ThroughputColumns; row: number } | Throughput | null,
    decision: Entry["decision"],
    directive: Entry["directive"],
    written: string[],
  ) {
    this.id = id;
    this.status = status;
    if (throughput !== null && "columns" in throughput) {
      this.#columns = throughput.columns;
      this.#row = throughput.row;
      this.#object = null;
    } else {
      this.#columns = null;
      this.#row = -1;
      this.#object = throughput;
    }
    this.decision = decision;
    this.directive = directive;
    this.written = written;
  }

  /** A new object on every read when the row holds it (equal each time). */
  get throughput(): Throughput | null {
    return this.#columns === null ? this.#object : throughputAt(this.#columns, this.#row, this.id);
  }

  /** Whether `throughput` is non-null, building no object. */
  get hasThroughput(): boolean {
    return this.#columns === null
      ? this.#object !== null
      : hasThroughputAt(this.#columns, this.#row);
  }

  /**
   * `throughput`'s values in one object every entry reuses (or the object the entry holds;
   * null: none), for a reader that reads its fields at once and keeps nothing (the metrics,
   * every cycle): no object is made. The next call on any entry overwrites it.
   */
  peekThroughput(): Throughput | null {
    return this.#columns === null
      ? this.#object
      : throughputInto(this.#columns, this.#row, this.id, SCRATCH);
  }

  set throughput(tp: Throughput | null) {
    this.#columns = null;
    this.#row = -1;
    this.#object = tp;
  }

  /** The fields in a plain entry's order (JSON.stringify, the API). */
  toJSON(): Entry {
    const p: Entry = {
      id: this.id,
      status: this.status,
      throughput: this.throughput,
      decision: this.decision,
      directive: this.directive,
      written: this.written,
    };
    if (this.error) p.error = this.error;
    return p;
  }
}
