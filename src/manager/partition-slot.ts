// One partition's place in the manager: its I/O ends (sensor, actuator), what it last read
// and wrote, and its status. Opening, failing (per phase, classified), losing a sensor and
// going stale are decided here, for this partition alone: no fault here stops the others.
import type {
  AllocationSnapshot,
  AppliedAllocation,
  PartitionActuator,
} from "../actuators/types.ts";
import { sameDirective } from "../core/directive.ts";
import { ErrorCodes, isWeirError } from "../core/errors.ts";
import type {
  CounterSample,
  Directive,
  PartitionSpec,
  PartitionStatus,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import { carryCpuUsed, withHostCongestion } from "../sensors/throughput.ts";
import type { PartitionSensor, SampleRound } from "../sensors/types.ts";
import type {
  FailurePhase,
  ManagerOptions,
  PartitionWiring,
  ThroughputFn,
} from "./manager-options.ts";
import type { PartitionAllocation } from "./view.ts";

/** A thrown value as the error info a record carries (`fallback` code when it is not a WeirError). */
export const toInfo = (err: unknown, fallback: string): WeirErrorInfo =>
  isWeirError(err)
    ? err.toInfo()
    : {
        code: fallback,
        message: err instanceof Error ? err.message : String(err),
        retryable: true,
      };

export class PartitionSlot {
  readonly wiring: PartitionWiring;
  spec: PartitionSpec;
  sensor: PartitionSensor | null = null;
  actuator: PartitionActuator | null = null;
  /** The host sensor's latest sample (of an agent-fed partition: its cgroup's CPU alone). */
  prevHost: CounterSample | null = null;
  /** The throughput of the host sensor's latest window (hostThroughput). */
  private lastHostTp: Throughput | null = null;
  /**
   * Agent-fed partitions: the host sample taken in the cycle that consumed the previous
   * report, so the host's CPU is read over the same cycles as the agent's packets.
   */
  hostAtReport: CounterSample | null = null;
  prevAgent: CounterSample | null = null;
  lastAgentAtMs: number | null = null;
  /** When the host sensor last gave a sample (or was opened); null without one. */
  lastHostAtMs: number | null = null;
  /** When isStale first looked at this partition: its first cycle (null before it). */
  private firstCycleAtMs: number | null = null;
  /**
   * When the host sensor was lost to a fault that leaves the cgroup (a pid that exited, an
   * interface deleted): the actuator stays, the partition is stale, the sensor is retried.
   */
  sensorLostAtMs: number | null = null;
  /** Values found before weir first touched the partition (kept across restarts). */
  found: AllocationSnapshot | null;
  status: PartitionStatus = "ok";
  goneAtMs: number | null = null;
  lastError: WeirErrorInfo | undefined = undefined;
  /** The phase `lastError` came from (a refused write is cleared by the next write that succeeds). */
  private lastErrorPhase: FailurePhase | null = null;
  /** The last directive submitted without an error (the change hook compares with it). */
  lastApplied: Directive | null = null;
  /** The directive the latest cycle record holds for this partition (recordedDirective). */
  private recorded: Directive | null = null;
  /** Desired vs applied as of the latest cycle (observeAllocation). */
  allocation: PartitionAllocation | null = null;
  private readonly onError: ManagerOptions["onPartitionError"];

  constructor(
    wiring: PartitionWiring,
    found: AllocationSnapshot | null,
    onError: ManagerOptions["onPartitionError"],
  ) {
    this.wiring = wiring;
    this.spec = { ...wiring.spec };
    this.found = found;
    this.onError = onError;
  }

  /**
   * Open a partition's actuator, then its sensor; an actuator that cannot open marks it gone, a
   * sensor that cannot open (but for a gone cgroup) only loses the sensor. Never throws.
   */
  open(nowMs: number): boolean {
    try {
      this.actuator ??= this.wiring.openActuator();
      this.found ??= this.actuator.snapshot();
    } catch (err) {
      this.fail(toInfo(err, ErrorCodes.TARGET_GONE), nowMs, "open");
      return false;
    }
    this.status = "ok";
    this.goneAtMs = null;
    this.lastError = undefined;
    return this.openSensor(nowMs);
  }

  /**
   * Open the host sensor where the partition has one (an agent-fed one's reads only its
   * cgroup's CPU); false when the partition is now gone.
   */
  openSensor(nowMs: number): boolean {
    if (this.sensor || !this.wiring.openSensor) return true;
    try {
      this.sensor = this.wiring.openSensor();
      this.lastHostAtMs = nowMs;
      this.sensorLostAtMs = null;
      return true;
    } catch (err) {
      return this.sensorFailed(toInfo(err, ErrorCodes.COUNTER_UNREADABLE), nowMs, "open");
    }
  }

  /**
   * A sensor's fault: retryable ones mark the partition `error`; a vanished cgroup makes it
   * gone; any other terminal one (a pid that exited, an interface deleted) loses only the
   * sensor: the actuator stays (so shutdown restores the cgroup), the partition is stale and
   * decays to its guarantee, and the sensor is reopened every retryGoneMs. False when gone.
   */
  sensorFailed(info: WeirErrorInfo, nowMs: number, phase: FailurePhase): boolean {
    if (this.wiring.source === "agent") return this.cpuSensorLost(info, nowMs, phase);
    if (info.retryable || info.code === ErrorCodes.CGROUP_GONE) {
      this.fail(info, nowMs, phase);
      return this.status !== "gone";
    }
    this.sensor?.close();
    this.sensor = null;
    this.prevHost = null;
    this.sensorLostAtMs = nowMs;
    this.lastError = info;
    this.lastErrorPhase = phase;
    // host or both: the host's counters are what the policy may believe (a `both` partition's
    // agent is only checked against them), so without them it is held to its guarantee
    this.status = "stale";
    this.onError?.(this.spec.id, info, this.status, phase);
    return true;
  }

  /**
   * A host-fed window's throughput as the cycle records it: one in which the sensor did not
   * read the CPU counters (`cpuWindowMs` 0: an idle partition's, sensors' idleCpuReadEveryMs)
   * shows the CPU used of the window before (throughput.ts carryCpuUsed).
   */
  hostThroughput(tp: Throughput): Throughput {
    this.lastHostTp = carryCpuUsed(tp, this.lastHostTp);
    return tp;
  }

  /**
   * An agent-fed partition's host sample (its cgroup's CPU alone), read in the cycle that
   * consumes a new report of it and kept for the next one (step 2 of the cycle,
   * `withHostCongestion`): a sample between two reports would never be used, so none is taken
   * (at 10,000 agent-fed partitions that was 10,000 reads a cycle for nothing while their
   * agents were silent). A read that fails loses the CPU sensor (`sensorFailed`). Nothing for
   * any other partition, or without a sensor.
   */
  sampleHostAtReport(nowMs: number, round: SampleRound, cycleStartMs: number): void {
    if (this.wiring.source !== "agent" || !this.sensor) return;
    try {
      this.prevHost = this.sensor.read(nowMs, round);
    } catch (err) {
      this.sensorFailed(toInfo(err, ErrorCodes.COUNTER_UNREADABLE), cycleStartMs, "sample");
    }
  }

  /**
   * An agent-fed partition's throughput from its report, with the throttling and CPU delay of
   * its cgroup on this host over the cycles since the previous report (sensors/throughput.ts
   * withHostCongestion) when the host sensor read both ends; else the report's alone.
   */
  withHostCongestion(agentTp: Throughput, throughput: ThroughputFn): Throughput {
    if (this.wiring.source !== "agent" || !this.hostAtReport || !this.prevHost) return agentTp;
    return withHostCongestion(
      agentTp,
      throughput(this.spec.id, this.hostAtReport, this.prevHost, "host"),
    );
  }

  /**
   * An agent-fed partition's host CPU sensor failed: its throughput falls back to the agent's
   * own throttling figures until the sensor reopens (every retryGoneMs); the partition's status is
   * the agent's and the actuator's to set. Reported on the first loss, not on each retry.
   */
  private cpuSensorLost(info: WeirErrorInfo, nowMs: number, phase: FailurePhase): boolean {
    const first = this.sensorLostAtMs === null;
    this.sensor?.close();
    this.sensor = null;
    this.prevHost = null;
    this.hostAtReport = null;
    this.sensorLostAtMs = nowMs;
    if (first) this.onError?.(this.spec.id, info, this.status, phase);
    return true;
  }

  /**
   * Whether a partition decays to its guarantee this cycle: its host counters fell silent
   * (`host`, and `both`, whose agent is only checked against them: its reports never stand in
   * for the host's, or a tenant could switch the check off by making its host counters fail —
   * ending the process its `pid` names, deleting its interface — and then be believed alone),
   * or its agent did (`agent`). The host sensor is silent once lost, or when it gave no sample
   * for staleAfterMs; an agent when it sent no report for staleAfterMs. A source not heard yet
   * counts as silent since the partition's first cycle (`firstCycleAtMs`): after a manager
   * (re)start, its agents have staleAfterMs to report before their partitions are held to
   * their guarantee, as a partition whose agent fell silent has — not the first cycle, which
   * would hold every agent-fed partition until its agent's next report.
   */
  isStale(nowMs: number, staleAfterMs: number, hasReports: boolean): boolean {
    this.firstCycleAtMs ??= nowMs;
    const silentSince = (lastAtMs: number | null) =>
      nowMs - (lastAtMs ?? this.firstCycleAtMs!) > staleAfterMs;
    if (this.wiring.source !== "agent" && this.wiring.openSensor)
      return this.sensorLostAtMs !== null || silentSince(this.lastHostAtMs);
    return this.wiring.source !== "host" && hasReports && silentSince(this.lastAgentAtMs);
  }

  /**
   * The directive a cycle record holds for this partition: this cycle's, or the object the
   * previous record holds when every field is the same (records are never changed once made),
   * so a partition whose allocation did not move adds no directive to the history.
   */
  recordedDirective(d: Directive | null): Directive | null {
    const last = this.recorded;
    if (d !== null && last !== null && sameDirective(last, d)) return last;
    this.recorded = d;
    return d;
  }

  /**
   * Read what the actuator last submitted and what it reports in force, and note since when
   * they differ. Reads only what the actuator holds (never waits for the target); a backend
   * that cannot say leaves it null, and a read that throws is this partition's fault alone.
   */
  observeAllocation(cycleStartMs: number): void {
    this.observeAllocationOnly(cycleStartMs);
    // the sensor reads CFS throttling only while a quota may be in force (its option
    // throttlingOnlyUnderQuota): a cap desired or in force, as the actuator knows it
    const al = this.allocation;
    this.sensor?.quotaInForce?.(
      al === null
        ? null
        : Number.isFinite(al.applied.capCpuMillis) ||
            (al.desired !== null && Number.isFinite(al.desired.capCpuMillis)),
    );
  }

  private observeAllocationOnly(cycleStartMs: number): void {
    const a = this.actuator;
    if (!a?.applied) {
      this.allocation = null;
      return;
    }
    try {
      const desired = a.desired?.() ?? null;
      const applied = a.applied();
      // a backend that answers with the same objects while nothing changed (FileSetActuator)
      // leaves the allocation as it was: same values, same since-when
      const was = this.allocation;
      if (was !== null && was.desired === desired && was.applied === applied) return;
      const inForce = desired === null || sameAllocation(desired, applied);
      const differsSinceMs = inForce ? null : (this.allocation?.differsSinceMs ?? cycleStartMs);
      this.allocation = { desired, applied, inForce, differsSinceMs };
    } catch (err) {
      this.allocation = null;
      this.fail(toInfo(err, ErrorCodes.APPLY_FAILED), cycleStartMs, "apply");
    }
  }

  /**
   * A write went through: a partition in error because a write was refused is ok again. A
   * host-fed one is also cleared by its next sample; an agent-fed one has no sample on the
   * host, so without this it showed the refused write's error (and counted it in
   * weir_partition_errors_total) every cycle after the kernel took the values.
   */
  applySucceeded(): void {
    if (this.status !== "error" || this.lastErrorPhase !== "apply") return;
    this.status = "ok";
    this.lastError = undefined;
    this.lastErrorPhase = null;
  }

  fail(info: WeirErrorInfo, nowMs: number, phase: FailurePhase): void {
    const terminal = !info.retryable;
    this.lastError = info;
    this.lastErrorPhase = phase;
    if (terminal) {
      this.status = "gone";
      this.goneAtMs = nowMs;
      this.sensor?.close();
      this.actuator?.close();
      this.sensor = null;
      this.actuator = null;
      this.prevHost = null;
      this.hostAtReport = null;
      this.allocation = null;
    } else {
      this.status = "error";
    }
    this.onError?.(this.spec.id, info, this.status, phase);
  }
}

/** Same values in every field either side has (absent fields: the target has no such knob). */
function sameAllocation(a: AppliedAllocation, b: AppliedAllocation): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof AppliedAllocation>;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}
