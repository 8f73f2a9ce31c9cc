// One run of conservation-real (and reaction-real): a Manager with one policy on the testbed's
// partitions, under a UDP or closed-loop TCP load (or none), the hog running or SIGSTOPped;
// what it measured as a RunOutcome. The probe of the packet server's cost that every load is
// sized from is server-probe.ts.
import fs from "node:fs";
import path from "node:path";
import type { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord, Importance, PartitionSpec } from "../src/core/model.ts";
import type { PlacementDecision } from "../src/manager/view.ts";
import { createWeirPolicy } from "../src/policy/weir.ts";
import type { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { policyFactories, weirWithoutWeightFloor } from "../src/sim/policies.ts";
import { type LoadResult, runLoad } from "../src/testbed/load.ts";
import type { Schedule } from "../src/testbed/schedule.ts";
import type { TestbedState } from "../src/testbed/state.ts";
import { runTcpLoad, type TcpLoadResult } from "../src/testbed/tcp-load.ts";
import { readUsageNs, stats } from "./harness.ts";
import {
  epochNow,
  RESERVE_CPU_MILLIS,
  reactionMs,
  STEP_SETTLED_MS,
  sleep,
  Window,
} from "./real-common.ts";
import {
  analyseSchedTrace,
  captureLater,
  classifier,
  type SchedTrace,
  schedstatOf,
  type WaitBreakdown,
} from "./sched-trace.ts";
import { type StallProbe, startStallProbe } from "./stall-probe.ts";
import { type TestbedManagerOptions, testbedManager } from "./testbed-manager.ts";

export const INTERVAL_MS = 100;
/**
 * Policies in table order (names from src/sim/policies.ts). VPA-style runs its 60× faster
 * variant: at the real 1-minute loop it could not act within these runs (it would equal plain
 * CFS with equal requests). weir without its light-partition weight floor (weights that follow
 * entitlement alone) runs beside weir: what the floor changes.
 */
export const CONSERVATION_POLICIES = [
  "weir",
  "weir-unplaced",
  weirWithoutWeightFloor.name,
  "none",
  "static-weights",
  "static",
  "koordinator-style",
  "vpa-style-fast",
] as const;
/**
 * weir with goals met in 99 % of cycles (`policy.goalCycles: 0.99`), run in the overload scenario
 * only (the other scenarios have no goal, where it is weir itself): the "meets the
 * importance-1 goal in ≥ 99 % of cycles" asked of weir in its config.
 */
export const WEIR_GOAL_CYCLES = {
  name: "weir-goal-cycles",
  label: "weir, goals in 99 % of cycles (policy.goalCycles 0.99)",
  settings: { goalCycles: 0.99 },
} as const;
/**
 * weir without placement (`placement: { mode: off }`): every partition on every CPU. weir itself
 * runs with the config's default (`auto`), which on a host whose CPUs share no last-level cache
 * places the network partitions on CPUs through their cpuset.cpus (the testbed makes each a
 * cpuset, as a container runtime does); this variant is what the default changed.
 */
export const WEIR_UNPLACED = {
  name: "weir-unplaced",
  label: "weir without placement (placement: off)",
  placement: { mode: "off", fill: 0.8 },
} as const;
/** The overload scenario's policies in table order: CONSERVATION_POLICIES with WEIR_GOAL_CYCLES after weir. */
export const OVERLOAD_POLICIES = [
  CONSERVATION_POLICIES[0],
  WEIR_GOAL_CYCLES.name,
  ...CONSERVATION_POLICIES.slice(1),
] as const;
/** Where the policies above come from. */
export const CONSERVATION_FACTORIES = [
  ...policyFactories,
  weirWithoutWeightFloor,
  {
    name: WEIR_GOAL_CYCLES.name,
    label: WEIR_GOAL_CYCLES.label,
    make: () => createWeirPolicy(),
  },
  { name: WEIR_UNPLACED.name, label: WEIR_UNPLACED.label, make: () => createWeirPolicy() },
];
/** conserve: load per partition as a fraction of one CPU (turned into packets/s by the probe's cost). */
export const CONSERVE_CORES = { a: 0.1, b: 0.15, c: 0.2 } as const;
/** TCP connections per partition (closed loop, one request in flight each). */
export const TCP_CONNECTIONS = 4;

/**
 * How the UDP generator times the partitions' batches unless a load says otherwise: staggered
 * (load.ts). With one tick for all three, every partition's burst reached its server at the same
 * instant — a property of the generator, not of independent tenants' traffic — and beside a hog,
 * where a CPU running only the idle-class hog does not pull a queued server, that instant set
 * the p99 of every work-conserving policy alike (placement-real's `udp` load keeps it).
 */
export const UDP_TARGET_PHASE = "staggered" as const;
/** Overload: offered and goal per partition, cores of one CPU (sum offered 2.4 > 1.7 managed). */
export const OVERLOAD = {
  a: { importance: 1 as Importance, offeredCores: 0.6, goalCores: 0.5 },
  b: { importance: 3 as Importance, offeredCores: 0.9, goalCores: 0.45 },
  c: { importance: 5 as Importance, offeredCores: 0.9, goalCores: null },
} as const;

export interface Timing {
  warmupMs: number;
  measureMs: number;
  idleMeasureMs: number;
  /**
   * The overload's measured window: longer than the others, since its figure is a share of
   * 100 ms cycles against a 99 % target — over 6 s (59 cycles) one cycle under the goal is
   * 1.7 %, so the share could only read 100 % or at most 98.3 %; over 12 s one cycle is 0.8 %.
   */
  overloadMeasureMs: number;
  stepAtMs: number;
}

export const timingFor = (quick: boolean): Timing =>
  quick
    ? {
        warmupMs: 1000,
        measureMs: 3000,
        idleMeasureMs: 2000,
        overloadMeasureMs: 3000,
        stepAtMs: 1500,
      }
    : {
        warmupMs: 1500,
        measureMs: 6000,
        idleMeasureMs: 3000,
        overloadMeasureMs: 12_000,
        stepAtMs: 3000,
      };

export type ScenarioName =
  | "conserve"
  | "idle"
  | "tcp"
  | "overload"
  | "step"
  | "ref-udp"
  | "ref-tcp"
  // the same no-hog references again, after the policies' runs: the ratio's noise (A/A)
  | "ref-udp-2"
  | "ref-tcp-2"
  | "isolated-udp"
  | "isolated-tcp"
  | "hogcap-udp";

/**
 * A hard cap on the hog written by hand (the cap experiment of issue 9): `capMillis` of CPU per
 * `periodUs` CFS period, with a burst of `burstFraction` × the quota. Written to the hog's cpu
 * cgroup after the manager's first cycle (so it lands over whatever the policy wrote) and
 * removed after the run.
 */
export interface HogCap {
  capMillis: number;
  periodUs: number;
  burstFraction: number;
}

/** The hand-set cap the conservation-real reference row runs with: 1 of the 2 CPUs, 100 ms periods, burst = quota. */
export const REFERENCE_HOG_CAP: HogCap = { capMillis: 1000, periodUs: 100_000, burstFraction: 1 };

/** The v1 values that express `cap` (quota and burst in µs per period). */
export function hogCapFiles(cap: HogCap): { periodUs: number; quotaUs: number; burstUs: number } {
  const quotaUs = Math.round((cap.capMillis / 1000) * cap.periodUs);
  return {
    periodUs: cap.periodUs,
    quotaUs,
    burstUs: Math.floor(quotaUs * Math.min(1, Math.max(0, cap.burstFraction))),
  };
}

/** Writes `cap` on the v1 cpu cgroup `dir`; returns the undo (no quota, no burst, 100 ms period). */
function writeHogCap(dir: string, cap: HogCap): () => void {
  const put = (f: string, v: number) => fs.writeFileSync(path.join(dir, f), String(v));
  const v = hogCapFiles(cap);
  put("cpu.cfs_period_us", v.periodUs);
  put("cpu.cfs_quota_us", v.quotaUs);
  put("cpu.cfs_burst_us", v.burstUs);
  return () => {
    put("cpu.cfs_quota_us", -1);
    put("cpu.cfs_burst_us", 0);
    put("cpu.cfs_period_us", 100_000);
  };
}

export interface RunOutcome {
  scenario: ScenarioName;
  policy: string;
  rep: number;
  hostIdle: number;
  hogCores: number;
  /** Cores this process (manager and load generator) used over the measured window. */
  selfCores: number;
  /** Cores the rest of the host used (busy less hog less this process): other work on the machine. */
  otherCores: number;
  /** The host's CPUs (for the hog's share of what the others left). */
  hostCpus: number;
  /** Per network partition: served ÷ offered and p99 over the measured window. */
  served: Record<string, number>;
  p99Ms: Record<string, number>;
  /**
   * Per network partition: the measured window's latencies (µs) as histogramToB64 encodes
   * them, so that the summary can pool repetitions (conservation-pooled.ts).
   */
  latencyB64?: Record<string, string>;
  /** TCP: replies per second per partition over the measured window. */
  rps?: Record<string, number>;
  /** Overload: answered per whole measured second per partition. */
  perSecond?: Record<string, number[]>;
  /**
   * Overload: the manager's own record of each measured cycle, per network partition: the
   * sensor's served packets/s over the cycle's window (what the policy's PI is computed from).
   */
  cycleServed?: Record<string, number[]>;
  /** cgroup files written per partition per second over the measured window. */
  writesPerPartitionSec: number;
  /** Whether the manager placed the network partitions on CPUs in this run, and why (its config's `placement.mode`). */
  placement?: PlacementDecision;
  /** Share of measured cycles the hog had a hard cap (any reason). */
  hogCappedFraction: number;
  /** Mean over measured cycles and network partitions of CPU delay and throttled fraction. */
  netDelay: number;
  netThrottled: number;
  reaction?: { ms: number | null; fromMillis: number; toMillis: number; stepAtMs: number } | null;
  /** Hog: measured cycles with a cap, by reason, and the median cap (millicores) when capped. */
  hogCapReasons: Record<string, number>;
  hogCapMillis: number;
  generatorCores: number;
  /**
   * Per network partition: its server's mean wait for a CPU per run (µs) over the measured
   * window: Σ run_delay ÷ Σ timeslices of its threads (/proc/<tid>/schedstat).
   */
  waitPerRunUs: Record<string, number>;
  /**
   * Per network partition: its cgroup's CPU over the measured window ÷ the replies to the
   * requests sent in it, µs (does the same request cost more beside the hog?).
   */
  cpuPerReplyUs: Record<string, number>;
  /** Where the servers waited for a CPU over TRACE_MS of the measured window (runs with a load and a trace). */
  schedWait?: WaitBreakdown;
  /**
   * Did the machine stand still in the measured window (stall-probe.ts: cyclictest's FIFO
   * thread per CPU)? Its latest wake-up and the guest-wide stalls, ms; null: no probe
   * (cyclictest not installed, or it failed: `stallsError`).
   */
  stalls?: { maxLateMs: number; guestWideMs: number[] } | null;
  stallsError?: string;
}

/** Scheduler trace per run with a load: this long, from 1 s into the measured window. */
export const TRACE_MS = 2000;

export interface Ctx {
  tb: TestbedState;
  capacity: number;
  backend: ReturnType<typeof createActuatorBackend>;
  hostCpu: HeldHostCpu;
  timing: Timing;
  /** The scheduler trace (sched-trace.ts); null: none taken. */
  trace?: SchedTrace | null;
  /** How long the trace records from 1 s into the measured window, ms (default TRACE_MS). */
  traceMs?: number;
}

export function networkSpecs(
  tb: TestbedState,
  capacity: number,
  overload: boolean,
): PartitionSpec[] {
  return [
    ...tb.partitions.map((p): PartitionSpec => {
      const o = overload ? OVERLOAD[p.name as keyof typeof OVERLOAD] : null;
      return {
        id: p.name,
        kind: "network",
        minCpuMillis: 0,
        maxCpuMillis: capacity,
        weight: 100,
        importance: o?.importance ?? 3,
      };
    }),
    ...tb.hogs.map(
      (h): PartitionSpec => ({
        id: h.name,
        kind: "batch",
        minCpuMillis: 0,
        maxCpuMillis: capacity,
        weight: 100,
        importance: 5,
      }),
    ),
  ];
}

function makeManager(
  ctx: Ctx,
  policyName: string,
  specs: PartitionSpec[],
  durationMs: number,
  policySettings?: Record<string, unknown>,
  placement?: TestbedManagerOptions["placement"],
  onPlacementChange?: TestbedManagerOptions["onPlacementChange"],
) {
  const factory = CONSERVATION_FACTORIES.find((p) => p.name === policyName);
  if (!factory) throw new Error(`conservation-real: no policy named ${policyName}`);
  if (policyName === WEIR_GOAL_CYCLES.name)
    policySettings = { ...WEIR_GOAL_CYCLES.settings, ...policySettings };
  const policy = factory.make({
    scenario: {
      name: "conservation-real",
      description: "",
      cpus: 2,
      reserveCpuMillis: RESERVE_CPU_MILLIS,
      durationMs,
      intervalMs: INTERVAL_MS,
      tickMs: 1,
      seed: 0,
      partitions: [],
    },
  });
  return testbedManager(ctx.tb, specs, {
    capacityCpuMillis: ctx.capacity,
    intervalMs: INTERVAL_MS,
    policy,
    ...(policySettings ? { policySettings } : {}),
    ...(placement ? { placement } : {}),
    ...(onPlacementChange ? { onPlacementChange } : {}),
    now: epochNow,
    backend: ctx.backend,
    hostCpu: true,
  });
}

export type LoadPlan =
  | { kind: "none" }
  | {
      kind: "udp";
      schedules: Record<string, Schedule>;
      /**
       * The generator's batches per target: staggered across the tick (the default here:
       * independent clients' requests do not reach their servers on one clock) or all on one
       * tick (load.ts's default; placement-real's `udp` reference load).
       */
      targetPhase?: "aligned" | "staggered";
    }
  | { kind: "tcp"; thinkMs: number };

export async function runOne(
  ctx: Ctx,
  opts: {
    scenario: ScenarioName;
    policy: string;
    rep: number;
    specs: PartitionSpec[];
    load: LoadPlan;
    measureMs: number;
    hogStopped: boolean;
    /** Every cycle's record (diagnostics). */
    onRecord?: (r: CycleRecord) => void;
    /** A hand-set cap on the hog for this run (written after the first cycle, removed after). */
    hogCap?: HogCap;
    /** The config's `policy:` section for this run (knobs by their config keys; diagnostics). */
    policySettings?: Record<string, unknown>;
    /** The config's `placement:` section for this run (absent: weir's default, auto; off for a baseline). */
    placement?: TestbedManagerOptions["placement"];
    /** Each change of the placement (diagnostics). */
    onPlacementChange?: TestbedManagerOptions["onPlacementChange"];
    /** The scheduler trace's text, when one was taken (diagnostics). */
    onSchedTrace?: (text: string) => void;
  },
): Promise<RunOutcome> {
  const { tb, timing } = ctx;
  const hog = tb.hogs[0]!;
  const durationMs = timing.warmupMs + opts.measureMs;
  const manager = makeManager(
    ctx,
    opts.policy,
    opts.specs,
    durationMs,
    opts.policySettings,
    opts.placement ?? (opts.policy === WEIR_UNPLACED.name ? WEIR_UNPLACED.placement : undefined),
    opts.onPlacementChange,
  );
  const placement = manager.placementDecision();
  const records: CycleRecord[] = [];
  const hogCpuDir = opts.hogCap
    ? hog.cgroupDirs.find((d) => fs.existsSync(path.join(d, "cpu.cfs_quota_us")))
    : undefined;
  if (opts.hogCap && !hogCpuDir) throw new Error("conservation-real: the hog has no v1 cpu cgroup");
  let uncap: (() => void) | null = null;
  manager.subscribe((r) => {
    records.push(r);
    if (opts.hogCap && hogCpuDir && !uncap) uncap = writeHogCap(hogCpuDir, opts.hogCap);
    opts.onRecord?.(r);
  });
  const win = new Window(ctx.hostCpu, hog.cgroupDirs);
  if (opts.hogStopped && hog.pid) process.kill(hog.pid, "SIGSTOP");
  const ac = new AbortController();
  const loop = manager.start(ac.signal);
  let measureFromMs = 0;
  let sched0: Array<{ delayNs: number; runs: number }> = [];
  let usage0: number[] = [];
  const classOf = classifier(
    tb.partitions.map((p) => p.serverPid),
    tb.hogs.map((h) => h.pid),
  );
  const capture =
    ctx.trace && opts.load.kind !== "none"
      ? captureLater(ctx.trace, timing.warmupMs + 1000, ctx.traceMs ?? TRACE_MS)
      : null;
  let traceText = "";
  let probe: StallProbe | null = null;
  const markTimer = setTimeout(() => {
    probe = startStallProbe(opts.measureMs);
    measureFromMs = epochNow();
    win.mark();
    sched0 = tb.partitions.map((p) => schedstatOf(p.serverPid));
    usage0 = tb.partitions.map((p) => readUsageNs(p.cgroupDirs));
  }, timing.warmupMs);
  let cpu = {
    hogCores: Number.NaN,
    hostIdle: Number.NaN,
    selfCores: Number.NaN,
    otherCores: Number.NaN,
    cpus: Number.NaN,
  };
  let udp: LoadResult | null = null;
  let tcp: TcpLoadResult | null = null;
  const phases = [
    { name: "measured", fromMs: timing.warmupMs, toMs: durationMs, keepHistogram: true },
  ];
  const waitPerRunUs: Record<string, number> = {};
  const usedNs: Record<string, number> = {};
  const net = tb.partitions;
  try {
    if (opts.load.kind === "udp") {
      const totalPps = Object.values(opts.load.schedules).reduce(
        (s, x) =>
          s +
          (x.kind === "constant" ? x.pps : x.kind === "step" ? Math.max(x.fromPps, x.toPps) : 0),
        0,
      );
      udp = await runLoad({
        targets: net.map((p) => ({
          name: p.name,
          addr: p.nsAddr,
          port: p.port,
          schedule: (opts.load as { schedules: Record<string, Schedule> }).schedules[p.name]!,
        })),
        durationMs,
        maxPackets: Math.ceil(totalPps * (durationMs / 1000) * 1.1) + 100,
        phases,
        targetPhase: opts.load.targetPhase ?? UDP_TARGET_PHASE,
      });
    } else if (opts.load.kind === "tcp") {
      tcp = await runTcpLoad({
        targets: net.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port })),
        connections: TCP_CONNECTIONS,
        thinkMs: opts.load.thinkMs,
        durationMs,
        // A bound well above what TCP_CONNECTIONS closed loops with this think time can send.
        maxRequests: Math.ceil(
          ((net.length * TCP_CONNECTIONS * 1000) / Math.max(0.5, opts.load.thinkMs)) *
            (durationMs / 1000),
        ),
        phases,
      });
    } else await sleep(durationMs);
    cpu = win.read();
    tb.partitions.forEach((p, i) => {
      const u0 = usage0[i];
      usedNs[p.name] = u0 === undefined ? Number.NaN : readUsageNs(p.cgroupDirs) - u0;
      const a = sched0[i];
      const b = schedstatOf(p.serverPid);
      waitPerRunUs[p.name] =
        a && b.runs > a.runs ? (b.delayNs - a.delayNs) / (b.runs - a.runs) / 1000 : Number.NaN;
    });
  } finally {
    clearTimeout(markTimer);
    (probe as StallProbe | null)?.stop();
    traceText = capture?.text() ?? "";
    if (capture) opts.onSchedTrace?.(traceText);
    ac.abort();
    await loop;
    manager.shutdown("restore");
    (uncap as (() => void) | null)?.();
    if (opts.hogStopped && hog.pid) process.kill(hog.pid, "SIGCONT");
  }
  let stalls: RunOutcome["stalls"] = null;
  let stallsError: string | undefined;
  try {
    const r = await (probe as StallProbe | null)?.result();
    if (r)
      stalls = {
        maxLateMs: Math.max(...r.maxLateUs) / 1000,
        guestWideMs: r.guestWideUs.map((us) => us / 1000),
      };
  } catch (e) {
    stallsError = e instanceof Error ? e.message : String(e);
  }
  const measured = records.filter((r) => r.startedAtMs >= measureFromMs && measureFromMs > 0);
  const seconds = opts.measureMs / 1000;
  let writes = 0;
  let hogCapped = 0;
  const hogCapReasons: Record<string, number> = {};
  const hogCaps: number[] = [];
  let delaySum = 0;
  let delayN = 0;
  let thrSum = 0;
  let thrN = 0;
  for (const r of measured)
    for (const p of r.partitions) {
      writes += p.written.length;
      if (p.id === hog.name) {
        if (p.directive && Number.isFinite(p.directive.capCpuMillis)) {
          hogCapped++;
          const why = p.directive.capReason ?? "none";
          hogCapReasons[why] = (hogCapReasons[why] ?? 0) + 1;
          hogCaps.push(p.directive.capCpuMillis);
        }
        continue;
      }
      const t = p.throughput;
      if (t?.cpuDelayFraction != null) {
        delaySum += t.cpuDelayFraction;
        delayN++;
      }
      if (t) {
        thrSum += t.throttledFraction;
        thrN++;
      }
    }
  const served: Record<string, number> = {};
  const p99Ms: Record<string, number> = {};
  const latencyB64: Record<string, string> = {};
  const rps: Record<string, number> = {};
  const perSecond: Record<string, number[]> = {};
  const cpuPerReplyUs: Record<string, number> = {};
  const cycleServed: Record<string, number[]> = {};
  // Cycles inside the measured span of the load, less the last interval: the manager runs on a
  // little after the generator stops, and the cycle at the end read 0.1–0.24× the rate.
  const loadEndMs = (udp?.startedAtEpochMs ?? 0) + durationMs;
  const inLoad = measured.filter((r) => r.startedAtMs + r.intervalMs <= loadEndMs);
  if (opts.scenario === "overload")
    for (const p of net)
      cycleServed[p.name] = inLoad.map(
        (r) =>
          r.partitions.find((x) => x.id === p.name)?.throughput?.servedPacketsPerSec ?? Number.NaN,
      );
  const perReply = (name: string, answered: number | undefined) => {
    const ns = usedNs[name] ?? Number.NaN;
    cpuPerReplyUs[name] = answered && answered > 0 ? ns / answered / 1000 : Number.NaN;
  };
  if (udp)
    for (const t of udp.targets) {
      const ph = t.phases.find((x) => x.name === "measured");
      perReply(t.name, ph?.answered);
      served[t.name] = ph?.servedRatio ?? Number.NaN;
      p99Ms[t.name] = ph?.latency.p99Ms ?? Number.NaN;
      if (ph?.histogramB64) latencyB64[t.name] = ph.histogramB64;
      const from = Math.ceil(timing.warmupMs / 1000);
      perSecond[t.name] = t.timeline
        .filter((s) => s.second >= from && s.spanMs >= 1000)
        .map((s) => s.answered);
    }
  if (tcp)
    for (const t of tcp.targets) {
      const ph = t.phases.find((x) => x.name === "measured");
      perReply(t.name, ph?.answered);
      served[t.name] = ph?.servedRatio ?? Number.NaN;
      p99Ms[t.name] = ph?.latency.p99Ms ?? Number.NaN;
      if (ph?.histogramB64) latencyB64[t.name] = ph.histogramB64;
      rps[t.name] = ph?.requestsPerSec ?? Number.NaN;
    }
  return {
    scenario: opts.scenario,
    policy: opts.policy,
    rep: opts.rep,
    hostIdle: cpu.hostIdle,
    hogCores: opts.hogStopped ? 0 : cpu.hogCores,
    selfCores: cpu.selfCores,
    otherCores: cpu.otherCores,
    hostCpus: cpu.cpus,
    served,
    p99Ms,
    ...(Object.keys(latencyB64).length > 0 ? { latencyB64 } : {}),
    ...(tcp ? { rps } : {}),
    ...(udp ? { perSecond } : {}),
    ...(opts.scenario === "overload" ? { cycleServed } : {}),
    writesPerPartitionSec: measured.length > 0 ? writes / opts.specs.length / seconds : Number.NaN,
    ...(placement ? { placement } : {}),
    hogCappedFraction: measured.length > 0 ? hogCapped / measured.length : Number.NaN,
    hogCapReasons,
    hogCapMillis: stats(hogCaps)?.median ?? Number.NaN,
    netDelay: delayN > 0 ? delaySum / delayN : Number.NaN,
    netThrottled: thrN > 0 ? thrSum / thrN : Number.NaN,
    generatorCores: udp?.generator.cpuCores ?? tcp?.generator.cpuCores ?? 0,
    waitPerRunUs,
    cpuPerReplyUs,
    ...(capture ? { schedWait: analyseSchedTrace(traceText, classOf) } : {}),
    stalls,
    ...(stallsError ? { stallsError } : {}),
    ...(opts.scenario === "step"
      ? {
          reaction: reactionMs(records, "a", (udp?.startedAtEpochMs ?? 0) + timing.stepAtMs, {
            beforeMs: 1000,
            settledFromMs: (udp?.startedAtEpochMs ?? 0) + durationMs - STEP_SETTLED_MS,
            minRiseMillis: 50,
          }),
        }
      : {}),
  };
}
