// A ManagerView that holds what is pushed into it: specs, a bounded ring of cycle records
// and the pause flag. It backs API tests, replays of recorded cycles, and any producer of
// CycleRecords that is not the Manager itself (the simulator can publish into one).
import { BoundsError, checkBoundsChange } from "../core/bounds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { CycleRecord, PartitionId, PartitionSpec } from "../core/model.ts";
import type { ManagerView, PartitionBoundsChange } from "../manager/view.ts";

export interface MemoryViewOptions {
  specs: PartitionSpec[];
  /** Ring size for recentRecords(); default 600 (a minute at 100 ms). */
  capacity?: number;
  /** What redactedConfig() returns (already redacted). */
  config?: unknown;
}

export class MemoryView implements ManagerView {
  #specs: PartitionSpec[];
  #records: CycleRecord[] = [];
  readonly #capacity: number;
  readonly #config: unknown;
  readonly #listeners = new Set<(record: CycleRecord) => void>();
  #paused = false;

  constructor(opts: MemoryViewOptions) {
    this.#specs = opts.specs.map((s) => ({ ...s }));
    this.#capacity = opts.capacity ?? 600;
    this.#config = opts.config ?? {};
  }

  /** Record one cycle and hand it to every subscriber (a throwing subscriber does not stop the others). */
  publish(record: CycleRecord): void {
    this.#records.push(record);
    if (this.#records.length > this.#capacity)
      this.#records.splice(0, this.#records.length - this.#capacity);
    for (const listener of [...this.#listeners]) {
      try {
        listener(record);
      } catch {
        // A reader's failure must never reach the producer.
      }
    }
  }

  /** How many subscribers are attached now (lets tests check that streams clean up). */
  subscriberCount(): number {
    return this.#listeners.size;
  }

  specs(): PartitionSpec[] {
    return this.#specs.map((s) => ({ ...s }));
  }

  recentRecords(): CycleRecord[] {
    return [...this.#records];
  }

  subscribe(listener: (record: CycleRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  redactedConfig(): unknown {
    return this.#config;
  }

  paused(): boolean {
    return this.#paused;
  }

  setPaused(paused: boolean): void {
    this.#paused = paused;
  }

  updateBounds(id: PartitionId, change: PartitionBoundsChange): PartitionSpec {
    const i = this.#specs.findIndex((s) => s.id === id);
    const current = this.#specs[i];
    if (!current) {
      throw new WeirError(ErrorCodes.CONFIG_INVALID, `partition "${id}" is not managed here`);
    }
    const capacity = this.#records[this.#records.length - 1]?.capacityCpuMillis ?? null;
    const issues = checkBoundsChange(this.#specs, id, change, capacity);
    if (issues.length > 0) throw new BoundsError(issues);
    const next: PartitionSpec = { ...current };
    if (change.minCpuMillis !== undefined) next.minCpuMillis = change.minCpuMillis;
    if (change.maxCpuMillis !== undefined) next.maxCpuMillis = change.maxCpuMillis;
    if (change.weight !== undefined) next.weight = change.weight;
    if (change.importance !== undefined) next.importance = change.importance;
    this.#specs[i] = next;
    return { ...next };
  }

  ready(): boolean {
    return this.#records.length > 0;
  }
}
