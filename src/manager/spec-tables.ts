// The policy's columns of the manager's spec list (src/policy/table.ts), kept from cycle to
// cycle while the list does not change, with each partition's row.
import type { PartitionId, PartitionSpec } from "../core/model.ts";
import { type PartitionTable, partitionTable } from "../policy/table.ts";

export interface SpecTable {
  columns: PartitionTable;
  /** Row of each partition in `columns` (and in the policy's output). */
  rowOf: Map<PartitionId, number>;
}

/** Whether `a` and `b` hold the same objects in the same places (a loop: see manager.ts's cycle). */
function sameSpecs(a: readonly PartitionSpec[], b: readonly PartitionSpec[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class SpecTables {
  private last: SpecTable | null = null;

  /** The columns of `specs`: last cycle's when every spec is the same object in the same place, else new. */
  of(specs: readonly PartitionSpec[]): SpecTable {
    const t = this.last;
    if (t && t.columns.size === specs.length && sameSpecs(t.columns.specs, specs)) return t;
    const rowOf = new Map<PartitionId, number>();
    for (let k = 0; k < specs.length; k++) rowOf.set(specs[k]!.id, k);
    this.last = { columns: partitionTable(specs), rowOf };
    return this.last;
  }
}
