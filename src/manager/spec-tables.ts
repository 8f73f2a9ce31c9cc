// The policy's columns of the manager's spec list (src/policy/table.ts), kept from cycle to
// cycle while the list does not change, with each partition's row.
import type { PartitionId, PartitionSpec } from "../core/model.ts";
import { type PartitionTable, partitionTable } from "../policy/table.ts";

export interface SpecTable {
  columns: PartitionTable;
  /** Row of each partition in `columns` (and in the policy's output). */
  rowOf: Map<PartitionId, number>;
}

export class SpecTables {
  private last: SpecTable | null = null;

  /** The columns of `specs`: last cycle's when every spec is the same object in the same place, else new. */
  of(specs: readonly PartitionSpec[]): SpecTable {
    const t = this.last;
    if (t && t.columns.size === specs.length && t.columns.specs.every((x, i) => x === specs[i]))
      return t;
    const rowOf = new Map<PartitionId, number>();
    for (let k = 0; k < specs.length; k++) rowOf.set(specs[k]!.id, k);
    this.last = { columns: partitionTable(specs), rowOf };
    return this.last;
  }
}
