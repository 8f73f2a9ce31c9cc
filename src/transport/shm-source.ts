// Reports and directives through the shared-memory slot table (shm.ts): the manager's
// ReportSource and the agent's channel. Slot index = partition index on the wire.
import { stepFreeNowMs } from "../core/clock.ts";
import type { Directive, PartitionId } from "../core/model.ts";
import {
  type DirectiveMessage,
  DirectiveVerifier,
  encodeDirective,
  type KeyRing,
  type RejectCounts,
  ReportVerifier,
} from "./codec.ts";
import { AgentSlot, ManagerTable } from "./shm.ts";
import {
  type AgentChannel,
  type AgentReport,
  aborted,
  agentKeyRing,
  type ReportSource,
  ReportTable,
  type StalenessInfo,
} from "./source.ts";

export interface ShmReportSourceOptions {
  /** The table file, e.g. /dev/shm/weir-slots. Created if missing. */
  path: string;
  keys: KeyRing;
  /** Slots in the table; default: the largest partition index + 1. */
  slotCount?: number;
  staleAfterMs?: number;
  maxAgeMs?: number;
  maxFutureMs?: number;
  readRetries?: number;
  now?: () => number;
}

/** The manager's side of the slot table: latest() scans changed slots and verifies them. */
export class ShmReportSource implements ReportSource {
  readonly transport = "shm" as const;
  private readonly table: ManagerTable;
  private readonly verifier: ReportVerifier;
  private readonly reports: ReportTable;
  private readonly keys: KeyRing;
  private readonly now: () => number;
  private closed = false;

  constructor(opts: ShmReportSourceOptions) {
    this.keys = opts.keys;
    this.now = opts.now ?? stepFreeNowMs;
    const ids = opts.keys.ids();
    const maxIndex = Math.max(-1, ...ids.map((id) => opts.keys.index(id)!));
    const slotCount = opts.slotCount ?? maxIndex + 1;
    if (maxIndex >= slotCount)
      throw new RangeError(
        `partition index ${maxIndex} does not fit a table of ${slotCount} slots`,
      );
    this.table = new ManagerTable({
      path: opts.path,
      slotCount,
      now: this.now,
      readRetries: opts.readRetries,
    });
    this.verifier = new ReportVerifier({
      keys: opts.keys,
      maxAgeMs: opts.maxAgeMs,
      maxFutureMs: opts.maxFutureMs,
      now: this.now,
    });
    this.reports = new ReportTable(ids, opts.staleAfterMs ?? 3000, this.now);
  }

  async start(signal: AbortSignal): Promise<void> {
    await aborted(signal);
    this.close();
  }

  /** Scan the table once: verify every slot that changed. Returns how many changed. */
  poll(): number {
    if (this.closed) return 0;
    const receivedAtMs = this.now();
    return this.table.scan(
      (slot, bytes) => {
        // A report copied from another partition's slot carries that partition's index.
        const index =
          (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16) | (bytes[11]! << 24)) >>> 0;
        if (index !== slot) {
          this.verifier.count("forged");
          return;
        }
        this.reports.accept(this.verifier.verify(bytes), receivedAtMs);
      },
      () => this.verifier.count("torn"),
    );
  }

  latest(): Map<PartitionId, AgentReport> {
    this.poll();
    return this.reports.latest();
  }

  rejected(): RejectCounts {
    return this.verifier.rejected();
  }

  accepted(): number {
    return this.verifier.accepted();
  }

  sendDirective(partition: PartitionId, d: Directive): boolean {
    const index = this.keys.index(partition);
    if (index === undefined || this.closed) return false;
    const bytes = encodeDirective(
      {
        partitionIndex: index,
        sequence: this.reports.nextDirectiveSequence(),
        timestampMs: this.now(),
        // the agent writes what it is given: the cap (Infinity = none), weight, idle class
        cpuMillis: d.capCpuMillis,
        weight: d.weight,
        cpuCount: d.cpuCount,
        idle: d.idle,
      },
      this.keys.key(index)!,
    );
    this.table.writeDirective(index, bytes);
    return true;
  }

  isStale(partition: PartitionId, nowMs: number): boolean {
    return this.reports.isStale(partition, nowMs);
  }

  staleness(nowMs: number): Map<PartitionId, StalenessInfo> {
    return this.reports.staleness(nowMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.close();
  }
}

export interface ShmAgentChannelOptions {
  path: string;
  partitionIndex: number;
  key: Uint8Array;
  maxAgeMs?: number;
  maxFutureMs?: number;
  now?: () => number;
}

/** An agent's side of the slot table: publishes into its own slot, polls its directive area. */
export class ShmAgentChannel implements AgentChannel {
  readonly transport = "shm" as const;
  private readonly slot: AgentSlot;
  private readonly verifier: DirectiveVerifier;

  constructor(opts: ShmAgentChannelOptions) {
    this.slot = new AgentSlot({ path: opts.path, slot: opts.partitionIndex });
    this.verifier = new DirectiveVerifier({
      keys: agentKeyRing(opts.partitionIndex, opts.key),
      maxAgeMs: opts.maxAgeMs,
      maxFutureMs: opts.maxFutureMs,
      now: opts.now,
    });
  }

  publish(report: Uint8Array): void {
    this.slot.writeReport(report);
  }

  pollDirective(): DirectiveMessage | null {
    const bytes = this.slot.readDirective();
    if (bytes === null) return null;
    const r = this.verifier.verify(bytes);
    return r.ok ? r.message : null;
  }

  rejected(): RejectCounts {
    return this.verifier.rejected();
  }

  close(): void {
    this.slot.close();
  }
}
