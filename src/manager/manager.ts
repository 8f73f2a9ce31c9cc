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
import { withQuotaFloor } from "../policy/rules.ts";
import type { Policy, PolicyKnobs, PolicyState } from "../policy/types.ts";
import type { PartitionSensor } from "../sensors/types.ts";
import { CycleHistory } from "./history.ts";
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

/** Cycles that may fail in a row (policy, reports or a hook threw) before the loop stops. */
export const DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES = 10;

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
  /** Silence of a partition's sensor or agent after which it decays to its guarantee. */
  staleAfterMs?: number;
  /** How long a gone partition (or a lost sensor) waits before it is tried again. */
  retryGoneMs?: number;
  /**
   * Cycles that may fail in a row before `start` stops with CYCLE_CRASH_LOOP (default 10). A
   * failed cycle writes nothing more: the values last written stay in force.
   */
  maxConsecutiveCycleFailures?: number;
  /** Called for every failed cycle, with how many failed in a row (the log line, the metric). */
  onCycleError?: (error: WeirErrorInfo, consecutive: number) => void;
  /** Records kept for readers at most (default DEFAULT_HISTORY_SIZE). */
  historySize?: number;
  /** Estimated bytes of records kept at most (default DEFAULT_HISTORY_MAX_BYTES; history.ts). */
  historyMaxBytes?: number;
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
  /** When the host sensor last gave a sample (or was opened); null without one. */
  lastHostAtMs: number | null;
  /**
   * When the host sensor was lost to a fault that leaves the cgroup (a pid that exited, an
   * interface deleted): the actuator stays, the partition is stale, the sensor is retried.
   */
  sensorLostAtMs: number | null;
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
  private readonly history: CycleHistory;
  private readonly listeners = new Set<(r: CycleRecord) => void>();
  private cycleNo = 0;
  private failedCycles = 0;
  private consecutiveFailedCycles = 0;
  private isPaused = false;
  private readonly hostCpu: HostCpuSampler | null;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.history = new CycleHistory({
      ...(opts.historySize === undefined ? {} : { maxRecords: opts.historySize }),
      ...(opts.historyMaxBytes === undefined ? {} : { maxBytes: opts.historyMaxBytes }),
    });
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
      lastHostAtMs: null,
      sensorLostAtMs: null,
      found: opts.resume?.found?.[w.spec.id] ?? null,
      status: "ok",
      goneAtMs: null,
      lastError: undefined,
      lastApplied: null,
    }));
    for (const s of this.slots) this.open(s, opts.now());
  }

  /**
   * Open a partition's actuator, then its sensor; an actuator that cannot open marks it gone, a
   * sensor that cannot open (but for a gone cgroup) only loses the sensor. Never throws.
   */
  private open(s: Slot, nowMs: number): boolean {
    try {
      s.actuator ??= s.wiring.openActuator();
      s.found ??= s.actuator.snapshot();
    } catch (err) {
      this.fail(s, toInfo(err, ErrorCodes.CGROUP_GONE), nowMs, "open");
      return false;
    }
    s.status = "ok";
    s.goneAtMs = null;
    s.lastError = undefined;
    return this.openSensor(s, nowMs);
  }

  /** Open the host sensor where the partition has one; false when the partition is now gone. */
  private openSensor(s: Slot, nowMs: number): boolean {
    if (s.sensor || s.wiring.source === "agent" || !s.wiring.openSensor) return true;
    try {
      s.sensor = s.wiring.openSensor();
      s.lastHostAtMs = nowMs;
      s.sensorLostAtMs = null;
      return true;
    } catch (err) {
      return this.sensorFailed(s, toInfo(err, ErrorCodes.COUNTER_UNREADABLE), nowMs, "open");
    }
  }

  /**
   * A sensor's fault: retryable ones mark the partition `error`; a vanished cgroup makes it
   * gone; any other terminal one (a pid that exited, an interface deleted) loses only the
   * sensor: the actuator stays (so shutdown restores the cgroup), the partition is stale and
   * decays to its guarantee, and the sensor is reopened every retryGoneMs. False when gone.
   */
  private sensorFailed(s: Slot, info: WeirErrorInfo, nowMs: number, phase: FailurePhase): boolean {
    if (info.retryable || info.code === ErrorCodes.CGROUP_GONE) {
      this.fail(s, info, nowMs, phase);
      return s.status !== "gone";
    }
    s.sensor?.close();
    s.sensor = null;
    s.prevHost = null;
    s.sensorLostAtMs = nowMs;
    s.lastError = info;
    s.status = s.wiring.source === "host" ? "stale" : "error";
    this.opts.onPartitionError?.(s.spec.id, info, s.status, phase);
    return true;
  }

  /**
   * Whether a partition decays to its guarantee this cycle: every source it has fell silent.
   * The host sensor is silent once lost, or when it gave no sample for staleAfterMs; an agent
   * when it sent no report for staleAfterMs (or never did).
   */
  private isStale(s: Slot, nowMs: number, staleAfterMs: number): boolean {
    const hostSilent =
      s.wiring.source !== "agent" && s.wiring.openSensor
        ? s.sensorLostAtMs !== null ||
          s.lastHostAtMs === null ||
          nowMs - s.lastHostAtMs > staleAfterMs
        : null;
    const agentSilent =
      s.wiring.source !== "host" && this.opts.reports
        ? s.lastAgentAtMs === null || nowMs - s.lastAgentAtMs > staleAfterMs
        : null;
    if (hostSilent === null && agentSilent === null) return false;
    return (hostSilent ?? true) && (agentSilent ?? true);
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

    // 1. sample host-side counters (reopening gone partitions and lost sensors when due)
    for (const s of this.slots) {
      if (s.status === "gone") {
        if (s.goneAtMs !== null && startedAtMs - s.goneAtMs < retryGoneMs) continue;
        if (!this.open(s, startedAtMs)) continue;
      } else if (
        !s.sensor &&
        s.sensorLostAtMs !== null &&
        startedAtMs - s.sensorLostAtMs >= retryGoneMs &&
        !this.openSensor(s, startedAtMs)
      )
        continue;
      if (!s.sensor) continue;
      try {
        const sample = s.sensor.read(now());
        if (s.prevHost)
          throughputs.set(s.spec.id, this.opts.throughput(s.spec.id, s.prevHost, sample, "host"));
        s.prevHost = sample;
        s.lastHostAtMs = startedAtMs;
        if (s.status === "error" || (s.status === "stale" && s.lastError)) {
          s.status = "ok";
          s.lastError = undefined;
        }
      } catch (err) {
        this.sensorFailed(s, toInfo(err, ErrorCodes.COUNTER_UNREADABLE), startedAtMs, "sample");
      }
    }
    // the host's CPU over the same window (null when unreadable; never fails the cycle)
    const host = this.hostCpu?.sample(now());
    const tSample = timer();

    // 2. agent reports (cross-checked against host counters where both exist)
    if (this.opts.reports) {
      const latest = this.opts.reports.latest();
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
      }
    }
    // a partition whose every source fell silent (agent, or host sensor failing or lost) is
    // stale: held to its guarantee until one speaks again
    const stale = new Set<PartitionId>();
    const staleAfterMs = this.opts.staleAfterMs ?? 3000;
    for (const s of this.slots) {
      if (s.status === "gone") continue;
      if (this.isStale(s, startedAtMs, staleAfterMs)) {
        stale.add(s.spec.id);
        s.status = "stale";
      } else if (s.status === "stale") s.status = "ok";
    }
    const tReports = timer();

    // 3. policy step over the partitions that exist; a stale one is held to its guarantee
    const active = this.slots.filter((s) => s.status !== "gone");
    // and one the policy may cap at its entitlement gets at least its cgroup's quota floor,
    // so the caps the kernel enforces sum to at most the capacity (withQuotaFloor)
    const specs = active.map((s) => {
      const spec = stale.has(s.spec.id) ? { ...s.spec, maxCpuMillis: s.spec.minCpuMillis } : s.spec;
      const floor = s.actuator?.quotaFloorCpuMillis?.();
      return floor === undefined ? spec : withQuotaFloor(spec, floor, this.opts.knobs);
    });
    const out = this.opts.policy.step(
      { nowMs: startedAtMs, knobs: this.opts.knobs, specs, throughput: throughputs },
      this.policyState,
    );
    this.policyState = out.state;
    const tPolicy = timer();

    // 4. apply (unless paused); actuators write only values that changed. Everything above
    // that may throw (reports, throughput, policy) has run, so a failed cycle writes nothing.
    const directives = new Map<PartitionId, Directive>();
    for (const d of out.directives) directives.set(d.partition, d);
    const decisions = new Map<PartitionId, Decision>();
    for (const d of out.decisions) decisions.set(d.partition, d);
    const written = new Map<PartitionId, string[]>();
    // a hook's fault (the change log, a directive send) neither stops the other partitions'
    // writes nor goes unnoticed: the cycle is recorded, then counted as failed
    let hookError: unknown = null;
    const hook = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        hookError ??= err;
      }
    };
    if (!this.isPaused) {
      for (const s of active) {
        const d = directives.get(s.spec.id);
        if (!d || !s.actuator) continue;
        const actuator = s.actuator;
        let res: ReturnType<PartitionActuator["apply"]>;
        try {
          res = actuator.apply(d);
        } catch (err) {
          res = {
            partition: s.spec.id,
            written: [],
            error: toInfo(err, ErrorCodes.CGROUP_WRITE_FAILED),
          };
        }
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
            if (dec) hook(() => this.opts.onChange?.(dec, d));
          }
          if (s.wiring.source !== "host")
            hook(() => this.opts.reports?.sendDirective?.(s.spec.id, d));
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
    for (const l of this.listeners) {
      try {
        l(record);
      } catch {
        // a reader's fault never stops the cycle
      }
    }
    if (hookError !== null)
      throw new WeirError(
        ErrorCodes.CYCLE_FAILED,
        `cycle ${record.cycle}: a hook threw after the writes: ${toInfo(hookError, ErrorCodes.CYCLE_FAILED).message}`,
        { retryable: true, cause: hookError },
      );
    return record;
  }

  /**
   * Run one cycle as the loop does: a throw is counted (cycleFailures, onCycleError) and the
   * values last written stay in force; CYCLE_CRASH_LOOP once maxConsecutiveCycleFailures
   * cycles in a row failed. Returns the record, or null for a failed cycle.
   */
  guardedCycle(): CycleRecord | null {
    try {
      const record = this.runCycle();
      this.consecutiveFailedCycles = 0;
      return record;
    } catch (err) {
      this.failedCycles++;
      this.consecutiveFailedCycles++;
      const info = toInfo(err, ErrorCodes.CYCLE_FAILED);
      try {
        this.opts.onCycleError?.(info, this.consecutiveFailedCycles);
      } catch {
        // the report of a failure must not become another one
      }
      const max = this.opts.maxConsecutiveCycleFailures ?? DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES;
      if (this.consecutiveFailedCycles >= max)
        throw new WeirError(
          ErrorCodes.CYCLE_CRASH_LOOP,
          `${this.consecutiveFailedCycles} cycles in a row failed (maxConsecutiveCycleFailures: ${max}); last: ${info.code}: ${info.message}`,
          { cause: err },
        );
      return null;
    }
  }

  /** Cycles that failed since start, and how many of the latest did in a row. */
  cycleFailures(): { total: number; consecutive: number } {
    return { total: this.failedCycles, consecutive: this.consecutiveFailedCycles };
  }

  /**
   * Run cycles on a steady interval until `signal` aborts. Cycles are level-based: when one
   * runs late, missed ticks are skipped, not replayed. A cycle that throws is counted and
   * skipped (guardedCycle); the loop rejects with CYCLE_CRASH_LOOP after
   * maxConsecutiveCycleFailures in a row.
   */
  async start(signal: AbortSignal): Promise<void> {
    const interval = this.opts.intervalMs;
    let next = this.opts.now();
    while (!signal.aborted) {
      this.guardedCycle();
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
    return this.history.list();
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
