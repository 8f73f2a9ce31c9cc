// The partition manager's cycle: sample -> read reports -> policy step -> apply (submit, then
// observe what each backend reports applied) -> record.
// Pure wiring over injected parts (sensors, actuators, policy, clock), so the real host,
// the simulator and the tests all run this same code.

import type { PartitionActuator } from "../actuators/types.ts";
import { BoundsError, checkBoundsChange } from "../core/bounds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type {
  CycleRecord,
  Directive,
  PartitionId,
  PartitionSpec,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import { withQuotaFloor } from "../policy/rules.ts";
import { stepOnTable } from "../policy/step-table.ts";
import { throughputColumnsOf } from "../policy/table.ts";
import type { PolicyState, TableOutput } from "../policy/types.ts";
import { CyclePartitions, columnarRecord } from "./cycle-partitions.ts";
import { CycleHistory } from "./history.ts";
import { HostCpuSampler } from "./host-cpu-sampler.ts";
import {
  DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES,
  type ManagerOptions,
  type PartitionWiring,
} from "./manager-options.ts";
import { PartitionSlot, toInfo } from "./partition-slot.ts";
import { type PlacementInput, PlacementStep } from "./placement-step.ts";
import { DEFAULT_REACH_REFRESH_CYCLES, ReachableKnobs } from "./reach.ts";
import { SpecTables } from "./spec-tables.ts";
import type { FoundCpuset, FoundValues } from "./state-file.ts";
import type {
  ManagerView,
  PartitionAllocation,
  PartitionBoundsChange,
  PartitionMechanisms,
  PartitionPlacement,
  PlacementDecision,
} from "./view.ts";

/** Whether `ids` are the slots' ids, in order. */
function sameIds(ids: readonly PartitionId[], slots: readonly PartitionSlot[]): boolean {
  if (ids.length !== slots.length) return false;
  for (let k = 0; k < ids.length; k++) if (ids[k] !== slots[k]!.spec.id) return false;
  return true;
}

/** The wirings of `active` (what the reachable-CPU sweep reads), in order. */
function wiringsOf(active: readonly PartitionSlot[]): PartitionWiring[] {
  const out: PartitionWiring[] = new Array(active.length);
  for (let k = 0; k < active.length; k++) out[k] = active[k]!.wiring;
  return out;
}

/** The step's directive for partition `id` (row k of the output is the table's row k). */
function directiveOf(
  out: TableOutput,
  rowOf: ReadonlyMap<PartitionId, number>,
  id: PartitionId,
): Directive | null {
  const r = rowOf.get(id);
  return r === undefined ? null : out.directives.at(r);
}

/** The step's decision for partition `id`, as directiveOf. */
function decisionOf(out: TableOutput, rowOf: ReadonlyMap<PartitionId, number>, id: PartitionId) {
  const r = rowOf.get(id);
  return r === undefined ? null : out.decisions.at(r);
}

export class Manager implements ManagerView {
  private readonly opts: ManagerOptions;
  private readonly slots: PartitionSlot[];
  private policyState: PolicyState;
  private readonly history: CycleHistory;
  private readonly listeners = new Set<(r: CycleRecord) => void>();
  private cycleNo = 0;
  private failedCycles = 0;
  private consecutiveFailedCycles = 0;
  private isPaused = false;
  private readonly hostCpu: HostCpuSampler | null;
  private readonly reach: ReachableKnobs;
  /** Placement on CPUs (null: off). */
  private readonly placement: PlacementStep | null;
  private readonly tables = new SpecTables();
  /**
   * Each stale partition's spec held to its guarantee (PartitionSpec.held), one object per spec:
   * the same object every cycle, so the policy's table is kept while the partition stays stale.
   */
  private readonly heldSpecs = new WeakMap<PartitionSpec, PartitionSpec>();

  private heldSpecOf(spec: PartitionSpec): PartitionSpec {
    let held = this.heldSpecs.get(spec);
    if (held === undefined) {
      held = { ...spec, held: true };
      this.heldSpecs.set(spec, held);
    }
    return held;
  }
  /** The partitions' ids in slot order, shared by the records while they do not change. */
  private ids: PartitionId[] | null = null;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.history = new CycleHistory({
      ...(opts.historySize === undefined ? {} : { maxRecords: opts.historySize }),
      ...(opts.historyMaxBytes === undefined ? {} : { maxBytes: opts.historyMaxBytes }),
    });
    this.hostCpu = opts.hostCpu ? new HostCpuSampler(opts.hostCpu) : null;
    this.reach = new ReachableKnobs(
      opts.knobs,
      opts.reachRefreshCycles ?? DEFAULT_REACH_REFRESH_CYCLES,
      opts.onCapacityChange,
    );
    this.placement = opts.placement
      ? new PlacementStep(opts.placement, {
          ...(opts.onPlacementChange ? { onChange: opts.onPlacementChange } : {}),
          ...(opts.onPlacementProblem ? { onProblem: opts.onPlacementProblem } : {}),
          ...(opts.onPlacementOpened ? { onOpened: opts.onPlacementOpened } : {}),
          ...(opts.resume?.foundCpusets ? { foundCpusets: opts.resume.foundCpusets } : {}),
        })
      : null;
    this.policyState = opts.resume?.policyState ?? opts.policy.initialState();
    this.slots = opts.partitions.map(
      (w) => new PartitionSlot(w, opts.resume?.found?.[w.spec.id] ?? null, opts.onPartitionError),
    );
    for (const s of this.slots) s.open(opts.now());
  }

  /** One cycle. Never throws for a partition's fault; each is recorded on that partition. */
  runCycle(): CycleRecord {
    const { now } = this.opts;
    const timer = this.opts.timer ?? now;
    const startedAtMs = now();
    const t0 = timer();
    const throughputs = new Map<PartitionId, Throughput>();
    const retryGoneMs = this.opts.retryGoneMs ?? 5000;

    // 1. sample host-side counters (reopening gone partitions and lost sensors when due); one
    // round, so a host-wide file every partition reads (/proc/net/dev) is read once
    const round = {};
    for (const s of this.slots) {
      if (s.status === "gone") {
        if (s.goneAtMs !== null && startedAtMs - s.goneAtMs < retryGoneMs) continue;
        if (!s.open(startedAtMs)) continue;
      } else if (
        !s.sensor &&
        s.sensorLostAtMs !== null &&
        startedAtMs - s.sensorLostAtMs >= retryGoneMs &&
        !s.openSensor(startedAtMs)
      )
        continue;
      // an agent-fed partition's host sensor (its cgroup's CPU alone) is read only in a cycle
      // that consumes a new report of it (step 2): no other cycle's sample is ever used
      if (!s.sensor || s.wiring.source === "agent") continue;
      try {
        const sample = s.sensor.read(now(), round);
        if (s.prevHost)
          throughputs.set(
            s.spec.id,
            s.hostThroughput(this.opts.throughput(s.spec.id, s.prevHost, sample, "host")),
          );
        s.prevHost = sample;
        s.lastHostAtMs = startedAtMs;
        if (s.status === "error" || (s.status === "stale" && s.lastError)) {
          s.status = "ok";
          s.lastError = undefined;
        }
      } catch (err) {
        s.sensorFailed(toInfo(err, ErrorCodes.COUNTER_UNREADABLE), startedAtMs, "sample");
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
          s.sampleHostAtReport(now(), round, startedAtMs);
          if (s.prevAgent && r.sample.atMs > s.prevAgent.atMs) {
            const agentTp = s.withHostCongestion(
              this.opts.throughput(s.spec.id, s.prevAgent, r.sample, "agent"),
              this.opts.throughput,
            );
            const hostTp = throughputs.get(s.spec.id);
            if (hostTp && this.opts.crossCheck)
              throughputs.set(s.spec.id, this.opts.crossCheck(hostTp, agentTp));
            // an agent's own numbers only where it is the source: a `both` partition without a
            // host reading is held (isStale), its agent never believed unchecked
            else if (!hostTp && s.wiring.source === "agent") throughputs.set(s.spec.id, agentTp);
          }
          s.prevAgent = r.sample;
          s.lastAgentAtMs = r.receivedAtMs;
          s.hostAtReport = s.wiring.source === "agent" ? s.prevHost : null;
        }
      }
    }
    // a partition whose every source fell silent (agent, or host sensor failing or lost) is
    // stale: held to its guarantee until one speaks again
    const stale = new Set<PartitionId>();
    const staleAfterMs = this.opts.staleAfterMs ?? 3000;
    for (const s of this.slots) {
      if (s.status === "gone") continue;
      if (s.isStale(startedAtMs, staleAfterMs, this.opts.reports !== undefined)) {
        stale.add(s.spec.id);
        s.status = "stale";
      } else if (s.status === "stale") s.status = "ok";
    }
    const tReports = timer();

    // 3. policy step over the partitions that exist; a stale one is held to its guarantee
    // Loops, not callbacks: a callback written here is a new closure every cycle, and V8 keeps
    // a closure's optimised code only while a closure of it lives, so each mark-compact threw
    // that code away and TurboFan compiled it again (`overhead-ab --trace-opt`, run19).
    const active: PartitionSlot[] = [];
    for (const s of this.slots) if (s.status !== "gone") active.push(s);
    const knobs = this.reach.current(wiringsOf, active);
    // and one the policy may cap at its entitlement gets at least its cgroup's quota floor,
    // so the caps the kernel enforces sum to at most the capacity (withQuotaFloor)
    const specs: PartitionSpec[] = new Array(active.length);
    for (let k = 0; k < active.length; k++) {
      const s = active[k]!;
      const spec = stale.has(s.spec.id) ? this.heldSpecOf(s.spec) : s.spec;
      const floor = s.actuator?.quotaFloorCpuMillis?.();
      specs[k] = floor === undefined ? spec : withQuotaFloor(spec, floor, knobs);
    }
    const table = this.tables.of(specs);
    // the cycle's throughput as columns: the step reads them, its decisions and the record keep
    // them (one set a cycle, not an object per partition per record)
    const columns = throughputColumnsOf(table.columns, throughputs);
    const out = stepOnTable(
      this.opts.policy,
      { nowMs: startedAtMs, knobs, table: table.columns, throughput: throughputs, columns },
      this.policyState,
    );
    this.policyState = out.state;
    const tPolicy = timer();

    // 4. apply (unless paused); actuators write only values that changed. Everything above
    // that may throw (reports, throughput, policy) has run, so a failed cycle writes nothing.
    // Row k of the policy's output is active[k]; a directive or decision object is made only
    // for the partitions that exist.
    // (rowOf, directiveOf, decisionOf: module functions, for the reason above)
    const rowOf = table.rowOf;
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
        const d = directiveOf(out, rowOf, s.spec.id);
        if (!d || !s.actuator) continue;
        const actuator = s.actuator;
        let res: ReturnType<PartitionActuator["apply"]>;
        try {
          res = actuator.apply(d);
        } catch (err) {
          res = {
            partition: s.spec.id,
            written: [],
            error: toInfo(err, ErrorCodes.APPLY_FAILED),
          };
        }
        written.set(s.spec.id, res.written);
        if (res.error) s.fail(res.error, startedAtMs, "apply");
        else {
          s.applySucceeded();
          const changed =
            s.lastApplied === null ||
            s.lastApplied.cpuMillis !== d.cpuMillis ||
            s.lastApplied.weight !== d.weight;
          s.lastApplied = d;
          if (changed) {
            const dec = decisionOf(out, rowOf, s.spec.id);
            if (dec) hook(() => this.opts.onChange?.(dec, d));
          }
          if (s.wiring.source !== "host")
            hook(() => this.opts.reports?.sendDirective?.(s.spec.id, d));
        }
      }
    }
    // placement (where in force): the network partitions on CPUs, from what each needs this cycle
    if (this.placement && !this.isPaused) {
      const rows: PlacementInput[] = [];
      for (const s of active) {
        const d = directiveOf(out, rowOf, s.spec.id);
        if (!d || !s.actuator) continue;
        const usedCpuMillis = (throughputs.get(s.spec.id)?.cpuCores ?? 0) * 1000;
        const row: PlacementInput = {
          id: s.spec.id,
          batch: s.spec.kind === "batch",
          needCpuMillis: Math.max(d.cpuMillis, Number.isFinite(usedCpuMillis) ? usedCpuMillis : 0),
        };
        if (s.wiring.openCpuset) row.openCpuset = s.wiring.openCpuset;
        rows.push(row);
      }
      try {
        // a cpuset written is a file written this cycle, beside the partition's cgroup values
        this.placement.step(rows, startedAtMs, (id, files) => {
          const before = written.get(id);
          written.set(id, before ? [...before, ...files] : [...files]);
        });
      } catch (err) {
        hookError ??= err;
      }
    }
    // what each backend reports in force against what was submitted (Desired -> Applied): read
    // from the actuator, never waited for, so a backend that applies later stalls nothing
    for (const s of active) s.observeAllocation(startedAtMs);
    const tApply = timer();

    // the record's entries are made from these columns when first read (cycle-partitions.ts):
    // an entry and a decision view per partition per cycle were most of what a record kept
    const slots = this.slots;
    const n = slots.length;
    const status: CycleRecord["partitions"][number]["status"][] = new Array(n);
    const rows: number[] = new Array(n);
    const directives: (Directive | null)[] = new Array(n);
    const writtenBy: (string[] | undefined)[] = new Array(n);
    let errors: (WeirErrorInfo | undefined)[] | null = null;
    let tpObjects: (Throughput | null)[] | null = null;
    for (let k = 0; k < n; k++) {
      const s = slots[k]!;
      const id = s.spec.id;
      const r = rowOf.get(id) ?? -1;
      status[k] = s.status;
      rows[k] = r;
      if (r < 0) {
        const tp = throughputs.get(id);
        if (tp !== undefined) {
          tpObjects ??= new Array<Throughput | null>(n).fill(null);
          tpObjects[k] = tp;
        }
      }
      directives[k] = s.status === "gone" ? null : s.recordedDirective(directiveOf(out, rowOf, id));
      writtenBy[k] = written.get(id);
      if (s.lastError) {
        errors ??= new Array<WeirErrorInfo | undefined>(n);
        errors[k] = s.lastError;
      }
    }
    if (this.ids === null || !sameIds(this.ids, slots)) this.ids = slots.map((s) => s.spec.id);
    const record = columnarRecord(
      {
        cycle: ++this.cycleNo,
        startedAtMs,
        intervalMs: this.opts.intervalMs,
        capacityCpuMillis: knobs.capacityCpuMillis,
      },
      new CyclePartitions({
        ids: this.ids,
        status,
        rows,
        throughput: columns,
        throughputObjects: tpObjects,
        decisions: out.decisions,
        directives,
        written: writtenBy,
        errors,
      }),
      {
        ...(this.hostCpu ? { host: host ?? null } : {}),
        timingsMs: {
          sample: tSample - t0,
          reports: tReports - tSample,
          policy: tPolicy - tReports,
          apply: tApply - tPolicy,
          total: tApply - t0,
        },
      },
    );
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
    if (this.placement) {
      if (mode === "restore") results.push(...this.placement.restore());
      this.placement.close();
    }
    this.hostCpu?.close();
    return results;
  }

  /**
   * What the state file keeps: the policy's memory and the values (and, with placement, the
   * cpusets) found at first start, each with the cgroup it was found in, and those found in
   * cgroups no partition is on now that a start has not written back (wiring.ts).
   */
  persistentState(): {
    policyState: PolicyState;
    found: Record<PartitionId, FoundValues>;
    foundUnmanaged?: FoundValues[];
    foundCpusets?: Record<PartitionId, FoundCpuset>;
    foundCpusetsUnmanaged?: Array<FoundCpuset & { partition: PartitionId }>;
  } {
    const found: Record<PartitionId, FoundValues> = {};
    // where each partition's values are found, for its cpuset below (a lookup per entry, not a
    // scan of the slots: this runs every saveEveryMs, at 10,000 partitions too)
    const foundAt = new Map<PartitionId, { cgroup: string; actuator: string }>();
    for (const s of this.slots) {
      const at = s.wiring.foundAt;
      if (at) foundAt.set(s.spec.id, at);
      if (s.found) found[s.spec.id] = at ? { ...s.found, ...at } : s.found;
    }
    const unmanaged = this.opts.resume?.foundUnmanaged;
    const cpusetsUnmanaged = this.opts.resume?.foundCpusetsUnmanaged;
    const state = {
      policyState: this.policyState,
      found,
      ...(unmanaged?.length ? { foundUnmanaged: unmanaged } : {}),
      ...(cpusetsUnmanaged?.length ? { foundCpusetsUnmanaged: cpusetsUnmanaged } : {}),
    };
    const cpus = this.foundCpusets();
    if (!cpus) return state;
    const foundCpusets: Record<PartitionId, FoundCpuset> = {};
    for (const [id, c] of Object.entries(cpus)) {
      const at = foundAt.get(id);
      foundCpusets[id] = at ? { cpus: c, ...at } : { cpus: c };
    }
    return { ...state, foundCpusets };
  }

  /**
   * The cpusets as found before weir first wrote them, by partition: placement's, or (placement
   * not in force) those of a killed run's placement that could not be restored at start
   * (wiring.ts), kept for the next start.
   */
  foundCpusets(): Record<PartitionId, string> | undefined {
    return this.placement ? this.placement.found() : this.opts.resume?.foundCpusets;
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
  /** Placement as configured and whether it is in force (null: the caller did not say). */
  placementDecision(): PlacementDecision | null {
    return this.opts.placementDecision ?? null;
  }
  /** Per partition, where it is placed and why (empty when placement is off). */
  placements(): Record<PartitionId, PartitionPlacement> {
    return this.placement?.view() ?? {};
  }
  allocations(): Record<PartitionId, PartitionAllocation | null> {
    const out: Record<PartitionId, PartitionAllocation | null> = {};
    for (const s of this.slots) out[s.spec.id] = s.allocation;
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
