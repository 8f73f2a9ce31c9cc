// The partition manager's cycle: sample -> read reports -> policy step -> apply -> record.
// Pure wiring over injected parts (sensors, actuators, policy, clock), so the real host,
// the simulator and the tests all run this same code.

import type { AllocationSnapshot, PartitionActuator } from "../actuators/types.ts";
import { BoundsError, checkBoundsChange } from "../core/bounds.ts";
import { ErrorCodes, isWeirError, WeirError } from "../core/errors.ts";
import type {
  CounterSample,
  CycleRecord,
  Decision,
  Directive,
  PartitionId,
  PartitionSpec,
  PartitionStatus,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import type { Policy, PolicyKnobs, PolicyState } from "../policy/types.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { HostCpuSampler, type HostCpuWiring } from "./host-cpu-sampler.ts";
import type { ManagerView, PartitionBoundsChange, PartitionMechanisms } from "./view.ts";

/** Cumulative counters reported by a partition's agent, with when they arrived. */
export interface AgentReading {
  sample: CounterSample;
  receivedAtMs: number;
}

/** Where agent reports come from (shared-memory table or datagram channel). */
export interface AgentReports {
  latest(): ReadonlyMap<PartitionId, AgentReading>;
  /** Send the directive back to the partition's agent (the "kernel in the partition" variant). */
  sendDirective?(partition: PartitionId, directive: Directive): void;
}

/** How to (re)open the I/O ends of one partition; called at start and when retrying a gone one. */
export interface PartitionWiring {
  spec: PartitionSpec;
  source: "host" | "agent" | "both";
  openSensor?: () => PartitionSensor;
  openActuator: () => PartitionActuator;
}

export type ThroughputFn = (
  partition: PartitionId,
  prev: CounterSample,
  next: CounterSample,
  source: Throughput["source"],
) => Throughput;

export type CrossCheckFn = (host: Throughput, agent: Throughput) => Throughput;

/** Where a partition's failure happened. */
export type FailurePhase = "open" | "sample" | "apply";

/** Cycle records the manager keeps for readers (API, dashboard) unless told otherwise. */
export const DEFAULT_HISTORY_SIZE = 600;

export interface ManagerOptions {
  now: () => number;
  /** Clock for phase timings in records (default `now`; the simulator passes a real one). */
  timer?: () => number;
  intervalMs: number;
  policy: Policy;
  knobs: PolicyKnobs;
  partitions: PartitionWiring[];
  throughput: ThroughputFn;
  crossCheck?: CrossCheckFn;
  reports?: AgentReports;
  /** The host's CPU, sampled beside the partitions into `CycleRecord.host` (absent: no `host`). */
  hostCpu?: HostCpuWiring;
  /** Agent silence after which the partition decays to its guarantee. */
  staleAfterMs?: number;
  /** How long a gone partition waits before it is tried again. */
  retryGoneMs?: number;
  /** Records kept for readers (default DEFAULT_HISTORY_SIZE). */
  historySize?: number;
  /** State from a previous run (state file). */
  resume?: { policyState?: PolicyState; found?: Record<PartitionId, AllocationSnapshot> };
  redactedConfig?: () => unknown;
  /** Called for every partition whose allocation changed (the log line). */
  onChange?: (decision: Decision, directive: Directive) => void;
  onPartitionError?: (
    partition: PartitionId,
    error: WeirErrorInfo,
    status: PartitionStatus,
    phase: FailurePhase,
  ) => void;
}

interface Slot {
  wiring: PartitionWiring;
  spec: PartitionSpec;
  sensor: PartitionSensor | null;
  actuator: PartitionActuator | null;
  prevHost: CounterSample | null;
  prevAgent: CounterSample | null;
  lastAgentAtMs: number | null;
  /** Values found before weir first touched the partition (kept across restarts). */
  found: AllocationSnapshot | null;
  status: PartitionStatus;
  goneAtMs: number | null;
  lastError: WeirErrorInfo | undefined;
  lastApplied: Directive | null;
}

const toInfo = (err: unknown, fallback: string): WeirErrorInfo =>
  isWeirError(err)
    ? err.toInfo()
    : {
        code: fallback,
        message: err instanceof Error ? err.message : String(err),
        retryable: true,
      };

export class Manager implements ManagerView {
  private readonly opts: ManagerOptions;
  private readonly slots: Slot[];
  private policyState: PolicyState;
  private readonly history: CycleRecord[] = [];
  private readonly listeners = new Set<(r: CycleRecord) => void>();
  private cycleNo = 0;
  private isPaused = false;
  private readonly hostCpu: HostCpuSampler | null;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.hostCpu = opts.hostCpu ? new HostCpuSampler(opts.hostCpu) : null;
    this.policyState = opts.resume?.policyState ?? opts.policy.initialState();
    this.slots = opts.partitions.map((w) => ({
      wiring: w,
      spec: { ...w.spec },
      sensor: null,
      actuator: null,
      prevHost: null,
      prevAgent: null,
      lastAgentAtMs: null,
      found: opts.resume?.found?.[w.spec.id] ?? null,
      status: "ok",
      goneAtMs: null,
      lastError: undefined,
      lastApplied: null,
    }));
    for (const s of this.slots) this.open(s, opts.now());
  }

  /** Open a partition's sensor and actuator; on failure mark it gone/error (never throws). */
  private open(s: Slot, nowMs: number): boolean {
    try {
      s.actuator ??= s.wiring.openActuator();
      s.found ??= s.actuator.snapshot();
      if (s.wiring.source !== "agent" && s.wiring.openSensor) s.sensor ??= s.wiring.openSensor();
      s.status = "ok";
      s.goneAtMs = null;
      s.lastError = undefined;
      return true;
    } catch (err) {
      this.fail(s, toInfo(err, ErrorCodes.CGROUP_GONE), nowMs, "open");
      return false;
    }
  }

  private fail(s: Slot, info: WeirErrorInfo, nowMs: number, phase: FailurePhase): void {
    const terminal = !info.retryable;
    s.lastError = info;
    if (terminal) {
      s.status = "gone";
      s.goneAtMs = nowMs;
      s.sensor?.close();
      s.actuator?.close();
      s.sensor = null;
      s.actuator = null;
      s.prevHost = null;
    } else {
      s.status = "error";
    }
    this.opts.onPartitionError?.(s.spec.id, info, s.status, phase);
  }

  /** One cycle. Never throws for a partition's fault; each is recorded on that partition. */
  runCycle(): CycleRecord {
    const { now } = this.opts;
    const timer = this.opts.timer ?? now;
    const startedAtMs = now();
    const t0 = timer();
    const throughputs = new Map<PartitionId, Throughput>();
    const retryGoneMs = this.opts.retryGoneMs ?? 5000;

    // 1. sample host-side counters
    for (const s of this.slots) {
      if (s.status === "gone") {
        if (s.goneAtMs !== null && startedAtMs - s.goneAtMs < retryGoneMs) continue;
        if (!this.open(s, startedAtMs)) continue;
      }
      if (!s.sensor) continue;
      try {
        const sample = s.sensor.read(now());
        if (s.prevHost)
          throughputs.set(s.spec.id, this.opts.throughput(s.spec.id, s.prevHost, sample, "host"));
        s.prevHost = sample;
        if (s.status === "error") {
          s.status = "ok";
          s.lastError = undefined;
        }
      } catch (err) {
        this.fail(s, toInfo(err, ErrorCodes.COUNTER_UNREADABLE), startedAtMs, "sample");
      }
    }
    // the host's CPU over the same window (null when unreadable; never fails the cycle)
    const host = this.hostCpu?.sample(now());
    const tSample = timer();

    // 2. agent reports (cross-checked against host counters where both exist)
    const stale = new Set<PartitionId>();
    if (this.opts.reports) {
      const latest = this.opts.reports.latest();
      const staleAfterMs = this.opts.staleAfterMs ?? 3000;
      for (const s of this.slots) {
        if (s.wiring.source === "host" || s.status === "gone") continue;
        const r = latest.get(s.spec.id);
        if (r && r.receivedAtMs !== s.lastAgentAtMs) {
          if (s.prevAgent && r.sample.atMs > s.prevAgent.atMs) {
            const agentTp = this.opts.throughput(s.spec.id, s.prevAgent, r.sample, "agent");
            const hostTp = throughputs.get(s.spec.id);
            if (hostTp && this.opts.crossCheck)
              throughputs.set(s.spec.id, this.opts.crossCheck(hostTp, agentTp));
            else if (!hostTp) throughputs.set(s.spec.id, agentTp);
          }
          s.prevAgent = r.sample;
          s.lastAgentAtMs = r.receivedAtMs;
        }
        const lastHeard = s.lastAgentAtMs;
        if (
          s.wiring.source === "agent" &&
          (lastHeard === null || startedAtMs - lastHeard > staleAfterMs)
        ) {
          stale.add(s.spec.id);
          s.status = "stale";
        } else if (s.status === "stale") s.status = "ok";
      }
    }
    const tReports = timer();

    // 3. policy step over the partitions that exist; a stale one is held to its guarantee
    const active = this.slots.filter((s) => s.status !== "gone");
    const specs = active.map((s) =>
      stale.has(s.spec.id) ? { ...s.spec, maxCpuMillis: s.spec.minCpuMillis } : s.spec,
    );
    const out = this.opts.policy.step(
      { nowMs: startedAtMs, knobs: this.opts.knobs, specs, throughput: throughputs },
      this.policyState,
    );
    this.policyState = out.state;
    const tPolicy = timer();

    // 4. apply (unless paused); actuators write only values that changed
    const directives = new Map(out.directives.map((d) => [d.partition, d]));
    const decisions = new Map(out.decisions.map((d) => [d.partition, d]));
    const written = new Map<PartitionId, string[]>();
    if (!this.isPaused) {
      for (const s of active) {
        const d = directives.get(s.spec.id);
        if (!d || !s.actuator) continue;
        const res = s.actuator.apply(d);
        written.set(s.spec.id, res.written);
        if (res.error) this.fail(s, res.error, startedAtMs, "apply");
        else {
          const changed =
            s.lastApplied === null ||
            s.lastApplied.cpuMillis !== d.cpuMillis ||
            s.lastApplied.weight !== d.weight;
          s.lastApplied = d;
          if (changed) {
            const dec = decisions.get(s.spec.id);
            if (dec) this.opts.onChange?.(dec, d);
          }
          if (s.wiring.source !== "host") this.opts.reports?.sendDirective?.(s.spec.id, d);
        }
      }
    }
    const tApply = timer();

    const record: CycleRecord = {
      cycle: ++this.cycleNo,
      startedAtMs,
      intervalMs: this.opts.intervalMs,
      capacityCpuMillis: this.opts.knobs.capacityCpuMillis,
      partitions: this.slots.map((s) => {
        const p: CycleRecord["partitions"][number] = {
          id: s.spec.id,
          status: s.status,
          throughput: throughputs.get(s.spec.id) ?? null,
          decision: s.status === "gone" ? null : (decisions.get(s.spec.id) ?? null),
          directive: s.status === "gone" ? null : (directives.get(s.spec.id) ?? null),
          written: written.get(s.spec.id) ?? [],
        };
        if (s.lastError) p.error = s.lastError;
        return p;
      }),
      ...(this.hostCpu ? { host: host ?? null } : {}),
      timingsMs: {
        sample: tSample - t0,
        reports: tReports - tSample,
        policy: tPolicy - tReports,
        apply: tApply - tPolicy,
        total: tApply - t0,
      },
    };
    this.history.push(record);
    if (this.history.length > (this.opts.historySize ?? DEFAULT_HISTORY_SIZE)) this.history.shift();
    for (const l of this.listeners) {
      try {
        l(record);
      } catch {
        // a reader's fault never stops the cycle
      }
    }
    return record;
  }

  /**
   * Run cycles on a steady interval until `signal` aborts. Cycles are level-based: when one
   * runs late, missed ticks are skipped, not replayed.
   */
  async start(signal: AbortSignal): Promise<void> {
    const interval = this.opts.intervalMs;
    let next = this.opts.now();
    while (!signal.aborted) {
      this.runCycle();
      next += interval;
      const nowMs = this.opts.now();
      if (next < nowMs) next = nowMs + interval - ((nowMs - next) % interval);
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(
          () => {
            signal.removeEventListener("abort", onAbort);
            resolve();
          },
          Math.max(0, next - this.opts.now()),
        );
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  /** Orderly shutdown: restore what weir found (or keep the last values), then close. */
  shutdown(
    mode: "restore" | "keep",
  ): Array<{ partition: PartitionId; written: string[]; error?: WeirErrorInfo }> {
    const results = [];
    for (const s of this.slots) {
      if (mode === "restore" && s.actuator && s.found) {
        const res = s.actuator.restore(s.found);
        const r: { partition: PartitionId; written: string[]; error?: WeirErrorInfo } = {
          partition: s.spec.id,
          written: res.written,
        };
        if (res.error) r.error = res.error;
        results.push(r);
      }
      s.sensor?.close();
      s.actuator?.close();
      s.sensor = null;
      s.actuator = null;
    }
    this.hostCpu?.close();
    return results;
  }

  /** What the state file keeps: the policy's memory and the values found at first start. */
  persistentState(): { policyState: PolicyState; found: Record<PartitionId, AllocationSnapshot> } {
    const found: Record<PartitionId, AllocationSnapshot> = {};
    for (const s of this.slots) if (s.found) found[s.spec.id] = s.found;
    return { policyState: this.policyState, found };
  }

  // --- ManagerView ---
  specs(): PartitionSpec[] {
    return this.slots.map((s) => ({ ...s.spec }));
  }
  mechanisms(): Record<PartitionId, PartitionMechanisms | null> {
    const out: Record<PartitionId, PartitionMechanisms | null> = {};
    for (const s of this.slots) out[s.spec.id] = s.actuator?.abilities?.() ?? null;
    return out;
  }
  recentRecords(): CycleRecord[] {
    return [...this.history];
  }
  subscribe(listener: (record: CycleRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  redactedConfig(): unknown {
    return this.opts.redactedConfig?.() ?? {};
  }
  paused(): boolean {
    return this.isPaused;
  }
  setPaused(paused: boolean): void {
    this.isPaused = paused;
  }
  ready(): boolean {
    return this.cycleNo > 0;
  }
  updateBounds(id: PartitionId, change: PartitionBoundsChange): PartitionSpec {
    const s = this.slots.find((x) => x.spec.id === id);
    if (!s)
      throw new WeirError(
        ErrorCodes.CONFIG_INVALID,
        `partition: no partition named "${id}" (rule: known-partition): got "${id}"`,
      );
    const next: PartitionSpec = { ...s.spec, ...change };
    const issues = checkBoundsChange(
      this.slots.map((x) => x.spec),
      id,
      change,
      this.opts.knobs.capacityCpuMillis,
    );
    if (issues.length > 0) throw new BoundsError(issues);
    s.spec = next;
    return { ...next };
  }
}
