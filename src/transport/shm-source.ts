// Reports and directives through shared-memory slots (shm.ts): the manager's ReportSource
// and the agent's channel. Slot index = partition index on the wire.
import { stepFreeNowMs } from "../core/clock.ts";
import type { Directive, PartitionId } from "../core/model.ts";
import {
  type DirectiveMessage,
  DirectiveVerifier,
  encodeDirective,
  type Inspected,
  type KeyRing,
  REPORT_BYTES,
  type RejectCounts,
  type ReportMessage,
  ReportVerifier,
} from "./codec.ts";
import { AgentSlot, ManagerSlots } from "./shm.ts";
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
  /**
   * The directory the slots are published in (`<path>/<index>`), e.g. /dev/shm/weir-slots:
   * created 0700 if missing, refused unless owned by this user and closed to others.
   */
  path: string;
  keys: KeyRing;
  /** Partition indexes must be below this (config `transport.shm.slots`); default: no bound. */
  slotCount?: number;
  staleAfterMs?: number;
  maxAgeMs?: number;
  maxFutureMs?: number;
  readRetries?: number;
  now?: () => number;
}

const FORGED: Inspected<ReportMessage> = Object.freeze({ ok: false, reason: "forged" });

/** The manager's side of the slots: latest() scans changed slots and verifies them in place. */
export class ShmReportSource implements ReportSource {
  readonly transport = "shm" as const;
  private readonly slots: ManagerSlots;
  private readonly verifier: ReportVerifier;
  private readonly reports: ReportTable;
  private readonly keys: KeyRing;
  private readonly now: () => number;
  private closed = false;
  private scanAtMs = 0;
  private readonly read = (slot: number, b: Uint8Array, at: number): Inspected<ReportMessage> =>
    // A report copied from another partition's slot carries that partition's index.
    (b[at + 8]! | (b[at + 9]! << 8) | (b[at + 10]! << 16) | (b[at + 11]! << 24)) >>> 0 !== slot
      ? FORGED
      : this.verifier.inspectAt(b, at, REPORT_BYTES, this.scanAtMs);
  private readonly commit = (_slot: number, r: Inspected<ReportMessage>): void => {
    this.reports.accept(this.verifier.settle(r), this.scanAtMs);
  };
  private readonly torn = (): void => this.verifier.count("torn");

  constructor(opts: ShmReportSourceOptions) {
    this.keys = opts.keys;
    this.now = opts.now ?? stepFreeNowMs;
    const ids = opts.keys.ids();
    const indexes = ids.map((id) => opts.keys.index(id)!);
    const over = indexes.find((i) => opts.slotCount !== undefined && i >= opts.slotCount);
    if (over !== undefined)
      throw new RangeError(`partition index ${over} is not below the ${opts.slotCount} slots`);
    this.slots = new ManagerSlots({
      dir: opts.path,
      indexes,
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

  /** Where partition `index`'s agent opens its slot. */
  slotPath(index: number): string {
    return `${this.slots.dir}/${index}`;
  }

  async start(signal: AbortSignal): Promise<void> {
    await aborted(signal);
    this.close();
  }

  /**
   * Scan once: every slot whose report changed is verified where it lies (MAC and checks on
   * the mapping, no copy) and kept only if its lock did not move meanwhile. Returns how many
   * changed.
   */
  poll(): number {
    if (this.closed) return 0;
    this.scanAtMs = this.now();
    return this.slots.scan(this.read, this.commit, this.torn);
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
    this.slots.writeDirective(index, bytes);
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
    this.slots.close();
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

/**
 * An agent's side: publishes into its own slot, polls its directive area. `path` is the
 * manager's slot directory or the slot itself (e.g. /proc/self/fd/3 for a handed-over fd).
 * When the slot's path comes to name another file (the manager restarted and made new
 * slots), the next publish maps the new one.
 */
export class ShmAgentChannel implements AgentChannel {
  readonly transport = "shm" as const;
  private slot: AgentSlot;
  private readonly verifier: DirectiveVerifier;

  constructor(private readonly opts: ShmAgentChannelOptions) {
    this.slot = new AgentSlot({ path: opts.path, slot: opts.partitionIndex });
    this.verifier = new DirectiveVerifier({
      keys: agentKeyRing(opts.partitionIndex, opts.key),
      maxAgeMs: opts.maxAgeMs,
      maxFutureMs: opts.maxFutureMs,
      now: opts.now,
    });
  }

  publish(report: Uint8Array): void {
    if (this.slot.moved()) {
      // the old mapping stays until a new slot opens (a manager between restarts has none)
      const next = new AgentSlot({ path: this.opts.path, slot: this.opts.partitionIndex });
      this.slot.close();
      this.slot = next;
    }
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
