// Run any policy on the columnar contract: its own `stepTable` when it has one, else its object
// `step` with the output indexed by the table's rows (the baselines have only the object step).
// Pure; what the manager and the simulator call.
import type { Decision, Directive, PartitionId, Throughput } from "../core/model.ts";
import { type PartitionTable, type ThroughputColumns, throughputColumnsOf } from "./table.ts";
import type {
  DecisionTable,
  DirectiveTable,
  Policy,
  PolicyKnobs,
  PolicyState,
  TableOutput,
} from "./types.ts";

export interface TableStepInput {
  nowMs: number;
  knobs: PolicyKnobs;
  table: PartitionTable;
  /** This cycle's windows by partition (columns are filled from it for a columnar policy). */
  throughput: ReadonlyMap<PartitionId, Throughput>;
  /**
   * `throughputColumnsOf(table, throughput)` when the caller made it already (the manager: its
   * records hold the same columns); a columnar policy then reads these.
   */
  columns?: ThroughputColumns;
}

export function stepOnTable(
  policy: Policy,
  input: TableStepInput,
  state: PolicyState,
): TableOutput {
  const { nowMs, knobs, table } = input;
  if (policy.stepTable)
    return policy.stepTable(
      {
        nowMs,
        knobs,
        table,
        throughput: input.columns ?? throughputColumnsOf(table, input.throughput),
      },
      state,
    );
  const out = policy.step(
    { nowMs, knobs, specs: table.specs, throughput: input.throughput },
    state,
  );
  return {
    directives: new ObjectDirectives(table, out.directives),
    decisions: new ObjectDecisions(table, out.decisions),
    state: out.state,
  };
}

/** Each row's object from a list keyed by partition (null where the list has none). */
function byRow<T extends { partition: PartitionId }>(
  table: PartitionTable,
  list: readonly T[],
): Array<T | null> {
  const rows: Array<T | null> = new Array(table.size).fill(null);
  const index = new Map<PartitionId, number>();
  for (let i = 0; i < table.size; i++) index.set(table.ids[i]!, i);
  for (const x of list) {
    const i = index.get(x.partition);
    if (i !== undefined) rows[i] = x;
  }
  return rows;
}

class ObjectDirectives implements DirectiveTable {
  readonly size: number;
  readonly cpuMillis: Float64Array;
  readonly weight: Float64Array;
  readonly #rows: Array<Directive | null>;

  constructor(table: PartitionTable, directives: readonly Directive[]) {
    this.size = table.size;
    this.#rows = byRow(table, directives);
    this.cpuMillis = new Float64Array(this.size);
    this.weight = new Float64Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const d = this.#rows[i];
      this.cpuMillis[i] = d ? d.cpuMillis : Number.NaN;
      this.weight[i] = d ? d.weight : Number.NaN;
    }
  }

  at(i: number): Directive | null {
    return this.#rows[i] ?? null;
  }
}

class ObjectDecisions implements DecisionTable {
  readonly size: number;
  readonly #rows: Array<Decision | null>;

  constructor(table: PartitionTable, decisions: readonly Decision[]) {
    this.size = table.size;
    this.#rows = byRow(table, decisions);
  }

  at(i: number): Decision | null {
    return this.#rows[i] ?? null;
  }

  has(i: number): boolean {
    return (this.#rows[i] ?? null) !== null;
  }
}
