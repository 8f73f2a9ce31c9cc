// The manager's view of agent reports, whatever carried them: one ReportSource interface,
// one implementation per transport (shm-source.ts, datagram.ts), one contract suite
// (contract.ts). Plus the pure rules the manager applies to agent data: cross-checking
// against host counters (host wins) and staleness (silent partitions decay to their guarantee).
import type { CounterSample, Directive, PartitionId, Throughput } from "../core/model.ts";
import {
  type DirectiveMessage,
  KeyRing,
  type RejectCounts,
  type ReportMessage,
  sequenceCounter,
  type Verified,
} from "./codec.ts";

/** One accepted report, as the manager keeps it. Structurally an `AgentReading` of manager.ts. */
export interface AgentReport {
  partition: PartitionId;
  partitionIndex: number;
  sequence: number;
  /** The agent's clock when it read its counters. */
  sentAtMs: number;
  /** The manager's clock when the report was accepted. */
  receivedAtMs: number;
  /**
   * Cumulative counters; `atMs` is the agent's timestamp (rates come from the agent's own
   * spacing, not from when datagrams happened to arrive). offered = rx, served = tx inside.
   */
  sample: CounterSample;
  /** The velocity the agent computed inside the partition (null when it could not tell). */
  velocityPacketsPerCpuSec: number | null;
  velocityWindowMs: number;
}

export interface StalenessInfo {
  stale: boolean;
  /** Time since the last accepted report; null when none was ever accepted. */
  silentForMs: number | null;
}

export type TransportName = "udp" | "shm";

export interface ReportSource {
  readonly transport: TransportName;
  /** Resolves when `signal` aborts, after closing the source. */
  start(signal: AbortSignal): Promise<void>;
  /** Latest accepted report per partition (the shared-memory source scans its slots first). */
  latest(): Map<PartitionId, AgentReport>;
  /** Rejections so far, by reason. */
  rejected(): RejectCounts;
  /** Reports accepted so far. */
  accepted(): number;
  /**
   * Sign and send a directive to the partition's agent. Returns false when it cannot be
   * delivered now (unknown partition; over UDP: no verified report yet to learn the address).
   */
  sendDirective(partition: PartitionId, directive: Directive): boolean;
  /** Whether the partition has been silent longer than the source's `staleAfterMs`. */
  isStale(partition: PartitionId, nowMs: number): boolean;
  /** Staleness of every configured partition. */
  staleness(nowMs: number): Map<PartitionId, StalenessInfo>;
  close(): void;
}

/** An agent's end of a transport: publish its own reports, poll for verified directives. */
export interface AgentChannel {
  readonly transport: TransportName;
  /** Publish one encoded report (136 bytes); never blocks. */
  publish(report: Uint8Array): void;
  /** The newest verified directive since the last call, or null. */
  pollDirective(): DirectiveMessage | null;
  /** Directives rejected so far, by reason. */
  rejected(): RejectCounts;
  close(): void;
}

/** The one-entry key ring an agent verifies its directives with. */
export function agentKeyRing(partitionIndex: number, key: Uint8Array): KeyRing {
  return new KeyRing([{ index: partitionIndex, id: `partition-${partitionIndex}`, key }]);
}

/** Pure staleness rule: no report yet, or the last one is older than `staleAfterMs`. */
export function stalenessOf(
  lastReceivedAtMs: number | undefined,
  nowMs: number,
  staleAfterMs: number,
): StalenessInfo {
  if (lastReceivedAtMs === undefined) return { stale: true, silentForMs: null };
  const silentForMs = Math.max(0, nowMs - lastReceivedAtMs);
  return { stale: silentForMs > staleAfterMs, silentForMs };
}

export function reportFromMessage(
  partition: PartitionId,
  m: ReportMessage,
  receivedAtMs: number,
): AgentReport {
  return {
    partition,
    partitionIndex: m.partitionIndex,
    sequence: m.sequence,
    sentAtMs: m.timestampMs,
    receivedAtMs,
    sample: {
      atMs: m.timestampMs,
      offeredPackets: m.rxPackets,
      servedPackets: m.txPackets,
      droppedPackets: m.droppedPackets,
      cpuUsageNs: m.cpuUsageNs,
      nrPeriods: m.nrPeriods,
      nrThrottled: m.nrThrottled,
      throttledNs: m.throttledNs,
    },
    velocityPacketsPerCpuSec: m.velocityPacketsPerCpuSec,
    velocityWindowMs: m.velocityWindowMs,
  };
}

/** An accepted message, made into an AgentReport only when someone asks for it. */
interface Kept {
  message: ReportMessage;
  receivedAtMs: number;
  report: AgentReport | null;
}

/** Bookkeeping shared by every transport: latest map, staleness, directive sequences. */
export class ReportTable {
  private readonly reports = new Map<PartitionId, Kept>();
  private readonly directiveSequence: () => number;

  constructor(
    private readonly partitions: readonly PartitionId[],
    private readonly staleAfterMs: number,
    now: () => number,
  ) {
    this.directiveSequence = sequenceCounter(now);
  }

  accept(r: Verified<ReportMessage>, receivedAtMs: number): void {
    if (!r.ok) return;
    // a partition reporting many times between two cycles is made into a report once
    const k = this.reports.get(r.partition);
    if (k === undefined)
      this.reports.set(r.partition, { message: r.message, receivedAtMs, report: null });
    else {
      k.message = r.message;
      k.receivedAtMs = receivedAtMs;
      k.report = null;
    }
  }

  latest(): Map<PartitionId, AgentReport> {
    const out = new Map<PartitionId, AgentReport>();
    for (const [id, k] of this.reports) {
      k.report ??= reportFromMessage(id, k.message, k.receivedAtMs);
      out.set(id, k.report);
    }
    return out;
  }

  nextDirectiveSequence(): number {
    return this.directiveSequence();
  }

  isStale(partition: PartitionId, nowMs: number): boolean {
    return stalenessOf(this.reports.get(partition)?.receivedAtMs, nowMs, this.staleAfterMs).stale;
  }

  staleness(nowMs: number): Map<PartitionId, StalenessInfo> {
    return new Map(
      this.partitions.map((p) => [
        p,
        stalenessOf(this.reports.get(p)?.receivedAtMs, nowMs, this.staleAfterMs),
      ]),
    );
  }
}

/** Resolves when the signal aborts (at once when it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

export interface CrossCheckTolerance {
  /** Relative difference allowed: 0.25 = the two may differ by 25 % of the larger. */
  relative: number;
  /** Differences below this many packets/s never count (noise at low rates). Default 20. */
  packetsPerSec?: number;
  /** Differences below this many cores never count. Default 0.02. */
  cores?: number;
}

const FIELDS = [
  ["offeredPacketsPerSec", "offered", "pps"],
  ["servedPacketsPerSec", "served", "pps"],
  ["droppedPacketsPerSec", "dropped", "pps"],
  ["cpuCores", "cpu", "cores"],
] as const;

/**
 * Host and agent measured the same partition over (about) the same window. The host's
 * numbers always win (a tenant must not win CPU by lying); when any field differs by more
 * than the tolerance, `disagreement` says which and by how much.
 */
export function crossCheck(
  host: Throughput,
  agent: Throughput,
  tolerance: number | CrossCheckTolerance = 0.25,
): Throughput {
  const tol = typeof tolerance === "number" ? { relative: tolerance } : tolerance;
  const absPps = tol.packetsPerSec ?? 20;
  const absCores = tol.cores ?? 0.02;
  const diffs: string[] = [];
  for (const [field, label, unit] of FIELDS) {
    const h = host[field];
    const a = agent[field];
    const floor = unit === "cores" ? absCores : absPps;
    if (Math.abs(h - a) > Math.max(floor, tol.relative * Math.max(Math.abs(h), Math.abs(a)))) {
      const fmt = (x: number) => (unit === "cores" ? x.toFixed(3) : x.toFixed(0));
      diffs.push(`${label}: agent ${fmt(a)} ${unit}, host ${fmt(h)} ${unit}`);
    }
  }
  const out: Throughput = { ...host, source: "host" };
  delete out.disagreement;
  if (diffs.length > 0) out.disagreement = `agent disagrees with host (${diffs.join("; ")})`;
  return out;
}
