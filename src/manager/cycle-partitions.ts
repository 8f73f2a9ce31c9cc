// A cycle record's partitions as the columns the cycle has anyway (its partition ids, each
// one's status, its row in the policy step's output, the step's throughput columns and
// decisions, the directive recorded and the files written), with the record's entries made
// from them only when something reads `record.partitions` (the API, `--json`, a test). A
// record stays in the history for its length, so every object in it is promoted to V8's old
// generation and marked until it goes: an entry and a decision view per partition per cycle
// were most of the objects a record held (docs/performance.md). The readers that run every
// cycle (the metrics, the history's size estimate, the service's error counter) read the
// columns through `partitionColumnsOf` and make no entry. The entries, once made, are the
// ones the manager made before (RecordEntry, the step's own decision views): the same JSON.
import type {
  CyclePartitionColumns,
  CycleRecord,
  Directive,
  PartitionId,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import {
  type ThroughputColumns,
  type ThroughputScratch,
  throughputInto,
  throughputScratch,
} from "../policy/table.ts";
import type { DecisionTable } from "../policy/types.ts";
import { RecordEntry } from "./record-entry.ts";

type Entry = CycleRecord["partitions"][number];

/** What peekThroughput lends (one for every record: the reader reads it before the next call). */
const SCRATCH: ThroughputScratch = throughputScratch();

/** The columns of one cycle's partitions, in the manager's slot order. */
export class CyclePartitions implements CyclePartitionColumns {
  /** Partition ids (shared from cycle to cycle while they do not change: never modify). */
  readonly ids: readonly PartitionId[];
  readonly status: readonly Entry["status"][];
  /** Row in the step's output and `throughput` columns; -1: none (gone at the step). */
  readonly rows: readonly number[];
  /** The cycle's throughput columns (what the step read). */
  readonly throughput: ThroughputColumns;
  /** A window the columns do not hold (a partition without a row), by index; null: none. */
  readonly throughputObjects: ReadonlyArray<Throughput | null | undefined> | null;
  /** The step's decisions; a partition gone by the record's time has none. */
  readonly decisions: DecisionTable;
  readonly directives: readonly (Directive | null)[];
  /** The files each apply wrote (undefined: no apply this cycle, an empty list). */
  readonly written: readonly (string[] | undefined)[];
  /** Each partition's last error, by index; null: none had one. */
  readonly errors: ReadonlyArray<WeirErrorInfo | undefined> | null;
  #entries: Entry[] | null = null;

  constructor(c: {
    ids: readonly PartitionId[];
    status: readonly Entry["status"][];
    rows: readonly number[];
    throughput: ThroughputColumns;
    throughputObjects: ReadonlyArray<Throughput | null | undefined> | null;
    decisions: DecisionTable;
    directives: readonly (Directive | null)[];
    written: readonly (string[] | undefined)[];
    errors: ReadonlyArray<WeirErrorInfo | undefined> | null;
  }) {
    this.ids = c.ids;
    this.status = c.status;
    this.rows = c.rows;
    this.throughput = c.throughput;
    this.throughputObjects = c.throughputObjects;
    this.decisions = c.decisions;
    this.directives = c.directives;
    this.written = c.written;
    this.errors = c.errors;
  }

  get size(): number {
    return this.ids.length;
  }

  /** The row of the step's output partition `k` has a decision in (-1: none). */
  decisionRow(k: number): number {
    return this.status[k] === "gone" ? -1 : this.rows[k]!;
  }

  /** Whether entry `k` has a decision, making no object. */
  hasDecision(k: number): boolean {
    const r = this.decisionRow(k);
    if (r < 0) return false;
    const d = this.decisions;
    return d.has ? d.has(r) : d.at(r) !== null;
  }

  /**
   * Entry `k`'s `decision?.velocityPacketsPerCpuSec` (undefined: no decision), making no
   * object where the step's table can say it without one.
   */
  decisionVelocity(k: number): number | null | undefined {
    const r = this.decisionRow(k);
    if (r < 0) return undefined;
    const d = this.decisions;
    if (d.velocityAt && d.has) {
      if (!d.has(r)) return undefined;
      const v = d.velocityAt(r);
      return Number.isNaN(v) ? null : v;
    }
    return d.at(r)?.velocityPacketsPerCpuSec;
  }

  /** Entry `k`'s decision object (made on first request, by the step's table). */
  decision(k: number): Entry["decision"] {
    const r = this.decisionRow(k);
    return r < 0 ? null : this.decisions.at(r);
  }

  /** Whether entry `k` has a throughput, making no object. */
  hasThroughput(k: number): boolean {
    const r = this.rows[k]!;
    if (r >= 0 && this.throughput.has[r] === 1) return true;
    return (this.throughputObjects?.[k] ?? null) !== null;
  }

  /**
   * Entry `k`'s throughput in one object every record reuses (or the object the cycle kept),
   * as RecordEntry.peekThroughput lends it: read at once, never kept.
   */
  peekThroughput(k: number): Throughput | null {
    const r = this.rows[k]!;
    if (r >= 0 && this.throughput.has[r] === 1)
      return throughputInto(this.throughput, r, this.ids[k]!, SCRATCH);
    return this.throughputObjects?.[k] ?? null;
  }

  /** The record's entries, made on the first call and then kept (the same array each time). */
  entries(): Entry[] {
    if (this.#entries !== null) return this.#entries;
    const out: Entry[] = new Array(this.size);
    for (let k = 0; k < this.size; k++) {
      const r = this.rows[k]!;
      const id = this.ids[k]!;
      const onRow = r >= 0 && this.throughput.has[r] === 1;
      const p = new RecordEntry(
        id,
        this.status[k]!,
        onRow ? { columns: this.throughput, row: r } : (this.throughputObjects?.[k] ?? null),
        this.decision(k),
        this.status[k] === "gone" ? null : this.directives[k]!,
        this.written[k] ?? [],
      );
      const e = this.errors?.[k];
      if (e) p.error = e;
      out[k] = p;
    }
    this.#entries = out;
    return out;
  }

  /** Replace the entries (an assignment to `record.partitions`). */
  setEntries(entries: Entry[]): void {
    this.#entries = entries;
  }
}

/**
 * A cycle record whose `partitions` are made from `columns` when first read. `partitions` is
 * an own enumerable property in the place a plain record has it (JSON.stringify and a spread
 * read it like a plain one); `columns` is not enumerable (CycleRecord.columns).
 */
export function columnarRecord(
  head: Pick<CycleRecord, "cycle" | "startedAtMs" | "intervalMs" | "capacityCpuMillis">,
  columns: CyclePartitions,
  tail: Pick<CycleRecord, "host" | "timingsMs">,
): CycleRecord {
  const record: CycleRecord = {
    cycle: head.cycle,
    startedAtMs: head.startedAtMs,
    intervalMs: head.intervalMs,
    capacityCpuMillis: head.capacityCpuMillis,
    get partitions(): Entry[] {
      return columns.entries();
    },
    set partitions(entries: Entry[]) {
      columns.setEntries(entries);
    },
    ...("host" in tail ? { host: tail.host ?? null } : {}),
    timingsMs: tail.timingsMs,
  };
  Object.defineProperty(record, "columns", { value: columns, enumerable: false });
  return record;
}

/** The columns behind a record the manager made (undefined: a plain or decoded record). */
export function partitionColumnsOf(record: CycleRecord): CyclePartitions | undefined {
  const c = record.columns;
  return c instanceof CyclePartitions ? c : undefined;
}
