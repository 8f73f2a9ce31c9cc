// One run of goals-real (and what goals-tiers-real reuses): the constants of the setup, the
// host plumbing (veth counters, CPU pinning, cpu.shares), closed-loop TCP measured on the
// testbed, a Manager per policy, and the check that `testbed down` left nothing behind.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord, PartitionSpec } from "../src/core/model.ts";
import type { Manager } from "../src/manager/manager.ts";
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import { policyFactories } from "../src/sim/policies.ts";
import type { TestbedPartition, TestbedState } from "../src/testbed/state.ts";
import { runTcpLoad, type TcpLoadResult } from "../src/testbed/tcp-load.ts";
import { counterRate, type GoalPlan, parseCounter, type Rate } from "./goals-real-math.ts";
import { readUsageNs, stats } from "./harness.ts";
import { epochNow, RESERVE_CPU_MILLIS } from "./real-common.ts";
import { testbedManager } from "./testbed-manager.ts";

export const INTERVAL_MS = 100;
/** Closed-loop connections per server: enough that its one thread always has a request queued. */
export const CONNECTIONS = 8;
export const GOAL_FRACTION = 0.8;
export const DELAY_THRESHOLD = defaultPolicyKnobs(1000).cpuDelayThreshold;
/** The CPU both servers are pinned to; the generator and manager are pinned to the other one. */
export const SERVER_CPU = 1;
export const GENERATOR_CPU = 0;
/** Hand-set cpu.shares for the "10:1" run (no manager). */
export const HAND_SHARES = { a: 10_240, b: 1024 };
/**
 * The "long slices" reference (no manager): A capped at GOAL_FRACTION of the CPU in periods of
 * this length, B at the least cpu.shares, so B runs mostly while A is throttled, in one block
 * per period, instead of in the gaps of A's wake-ups (a lever for B's surplus, measured).
 */
export const LONG_SLICE_PERIOD_US = 500_000;
export const LONG_SLICE_SHARES = { a: 10_240, b: 2 };

export type PolicyRun =
  | "weir"
  | "weir-1cpu"
  | "weir-untrimmed"
  | "weir-period-200"
  | "weir-period-500"
  | "weir-no-donor-cap"
  | "weir-goal-cycles"
  | "none"
  | "static-weights"
  | "hand-10-1"
  | "hand-cap-long"
  | "koordinator-style";
export const POLICIES: readonly PolicyRun[] = [
  "weir",
  "weir-1cpu",
  "weir-untrimmed",
  "weir-period-200",
  "weir-period-500",
  "weir-no-donor-cap",
  "weir-goal-cycles",
  "none",
  "static-weights",
  "hand-10-1",
  "hand-cap-long",
  "koordinator-style",
];
export const LABEL: Record<PolicyRun, string> = {
  weir: "weir (capacity configured 1.7 CPUs, as scenarios-real; held to the reachable CPU)",
  "weir-1cpu": "weir (capacity 1 CPU: the pinned one)",
  "weir-untrimmed":
    "weir, donor cap untrimmed (policy.donorCapMargin: 0.05: goal ÷ velocity + 5 %, open loop, as before the trim)",
  "weir-period-200": "weir, donor cap over 200 ms periods (policy.donorCapPeriodMs: 200)",
  "weir-period-500": "weir, donor cap over 500 ms periods (policy.donorCapPeriodMs: 500)",
  "weir-no-donor-cap": "weir without the donor cap (policy.donorCapPeriodMs: 0: weights alone)",
  "weir-goal-cycles":
    "weir, goals in 99 % of cycles (policy.goalCycles: 0.99: a margin learnt from A's readings)",
  none: "none (plain CFS)",
  "static-weights": "static weights (importance 1 vs 3)",
  "hand-10-1": "hand-set cpu.shares 10:1 (no manager)",
  "hand-cap-long": `hand-set long slices: A capped at ${GOAL_FRACTION * 100} % of the CPU per ${LONG_SLICE_PERIOD_US / 1000} ms period, cpu.shares ${LONG_SLICE_SHARES.a}:${LONG_SLICE_SHARES.b} (no manager)`,
  "koordinator-style": "Koordinator-style",
};

export interface Timing {
  warmupMs: number;
  measureMs: number;
  soloMs: number;
}
/** A solo run (before and after every policy run) is 1 s of warm-up, then soloMs measured. */
export const SOLO_WARMUP_MS = 1000;
export const timingFor = (quick: boolean): Timing =>
  quick
    ? { warmupMs: 1500, measureMs: 4000, soloMs: 2000 }
    : { warmupMs: 2000, measureMs: 8000, soloMs: 3000 };

// ---------------------------------------------------------------------------------------------
// Host plumbing (files read here, parsed in goals-real-math.ts).

export const readCounter = (ifName: string, name: "rx_packets" | "tx_packets"): number => {
  const f = `/sys/class/net/${ifName}/statistics/${name}`;
  return parseCounter(fs.readFileSync(f, "utf8"), f);
};

const sharesFile = (p: TestbedPartition): string => {
  const f = p.cgroupDirs.map((d) => path.join(d, "cpu.shares")).find((x) => fs.existsSync(x));
  if (!f) throw new Error(`goals-real: no cpu.shares for partition ${p.name} (cgroup v1 only)`);
  return f;
};

// ---------------------------------------------------------------------------------------------

export interface Measured {
  rate: Record<string, Rate>;
  p99Ms: Record<string, number>;
  /**
   * CPU each partition's cgroup used over the measured window (cpuacct.usage delta ÷ the
   * window), cores: for every run, managed or not, so replies per CPU-second can be compared.
   */
  cpuCores: Record<string, number>;
  timedOut: number;
  generatorCores: number;
}

/** Closed-loop TCP on `targets` for warm-up + measure; rates and p99 over the measured window. */
export async function measureTcp(
  tb: TestbedState,
  names: string[],
  timing: { warmupMs: number; measureMs: number },
): Promise<Measured> {
  const parts = tb.partitions.filter((p) => names.includes(p.name));
  const durationMs = timing.warmupMs + timing.measureMs;
  let rx0: Record<string, number> = {};
  let cpu0: Record<string, number> = {};
  let t0 = 0;
  const mark = setTimeout(() => {
    t0 = performance.now();
    rx0 = Object.fromEntries(parts.map((p) => [p.name, readCounter(p.hostIf, "rx_packets")]));
    cpu0 = Object.fromEntries(parts.map((p) => [p.name, readUsageNs(p.cgroupDirs)]));
  }, timing.warmupMs);
  let load: TcpLoadResult;
  try {
    load = await runTcpLoad({
      targets: parts.map((p) => ({ name: p.name, addr: p.nsAddr, port: p.port })),
      connections: CONNECTIONS,
      thinkMs: 0,
      durationMs,
      // Bound: 20,000 requests/s per partition is far above one SHA-256 server's rate.
      maxRequests: Math.ceil(parts.length * 20_000 * (durationMs / 1000)),
      phases: [{ name: "measured", fromMs: timing.warmupMs, toMs: durationMs }],
    });
  } finally {
    clearTimeout(mark);
  }
  const ms = performance.now() - t0;
  const rate: Record<string, Rate> = {};
  const p99Ms: Record<string, number> = {};
  const cpuCores: Record<string, number> = {};
  for (const t of load.targets) {
    const p = parts.find((x) => x.name === t.name)!;
    const ph = t.phases.find((x) => x.name === "measured");
    rate[t.name] = {
      requestsPerSec: ph?.requestsPerSec ?? Number.NaN,
      packetsPerSec:
        t0 > 0
          ? counterRate(rx0[t.name] ?? Number.NaN, readCounter(p.hostIf, "rx_packets"), ms)
          : Number.NaN,
    };
    p99Ms[t.name] = ph?.latency.p99Ms ?? Number.NaN;
    cpuCores[t.name] =
      t0 > 0 ? (readUsageNs(p.cgroupDirs) - (cpu0[t.name] ?? Number.NaN)) / 1e6 / ms : Number.NaN;
  }
  return {
    rate,
    p99Ms,
    cpuCores,
    timedOut: load.totals.timedOut,
    generatorCores: load.generator.cpuCores,
  };
}

function specsFor(tb: TestbedState, capacity: number, plan: GoalPlan): PartitionSpec[] {
  return tb.partitions.map(
    (p): PartitionSpec => ({
      id: p.name,
      kind: "network",
      minCpuMillis: 0,
      maxCpuMillis: capacity,
      weight: 100,
      importance: p.name === "a" ? 1 : 3,
      ...(p.name === "a" ? { goalPacketsPerSec: plan.goalPacketsPerSec } : {}),
    }),
  );
}

/** The weir runs with other knobs than the defaults: the donor cap's period (0 = none) or margin (0.05 = untrimmed). */
const WEIR_SETTINGS: Partial<Record<PolicyRun, Record<string, number>>> = {
  "weir-untrimmed": { donorCapMargin: 0.05 },
  "weir-period-200": { donorCapPeriodMs: 200 },
  "weir-period-500": { donorCapPeriodMs: 500 },
  "weir-no-donor-cap": { donorCapPeriodMs: 0 },
  "weir-goal-cycles": { goalCycles: 0.99 },
};

export function makeManager(
  tb: TestbedState,
  policyName: string,
  specs: PartitionSpec[],
  capacity: number,
  backend: ReturnType<typeof createActuatorBackend>,
  policySettings?: Record<string, unknown>,
): Manager {
  const factory = policyFactories.find((p) => p.name === policyName);
  if (!factory) throw new Error(`goals-real: no policy named ${policyName}`);
  const policy = factory.make({
    scenario: {
      name: "goals-real",
      description: "",
      cpus: 2,
      reserveCpuMillis: 2000 - capacity,
      durationMs: 0,
      intervalMs: INTERVAL_MS,
      tickMs: 1,
      seed: 0,
      partitions: [],
    },
  });
  return testbedManager(tb, specs, {
    capacityCpuMillis: capacity,
    intervalMs: INTERVAL_MS,
    policy,
    now: epochNow,
    backend,
    ...(policySettings ? { policySettings } : {}),
  });
}

export interface GoalRun {
  policy: PolicyRun;
  rep: number;
  /**
   * This run's goal and surplus: the goal weir was given (from the solo run just before), the
   * surplus from the mean of the solo runs just before and just after (bracketPlan).
   */
  plan: GoalPlan;
  /** A's solo runs just before and just after this run (B's server SIGSTOPped, no manager). */
  solo?: { before: Rate; after: Rate };
  a: Rate;
  b: Rate;
  p99Ms: { a: number; b: number };
  /** CPU each partition's cgroup used over the measured window, cores (Measured.cpuCores). */
  cpuCores: { a: number; b: number };
  timedOut: number;
  generatorCores: number;
  /** Medians over measured cycles (managed runs): entitlement, weight, CPU used, delay, PI. */
  diag?: {
    aCpuMillis: number;
    bCpuMillis: number;
    aWeight: number;
    bWeight: number;
    aUsedCores: number;
    bUsedCores: number;
    aDelay: number;
    aVelocity: number;
    aPi: number;
    aDonorFraction: number;
    /** Share of cycles A's directive was a donor cap (capReason goal-donor, long CFS period). */
    aDonorCapFraction: number;
    /** Share of cycles A's demand was "not constrained" while its CPU delay was above the threshold. */
    aDelayIgnoredFraction: number;
    aWhy: string;
    /** The capacity the policy shared out, median over cycles (the reachable CPU holds it to 1,000m). */
    capacityCpuMillis: number;
    /**
     * Measured cycles that wrote A's cpu.cfs_quota_us (each write refills the period's runtime
     * and releases a throttled group: extra CPU for A), and how many measured cycles there were.
     */
    aQuotaWrites: number;
    cycles: number;
    /** Share of measured cycles in which A's served packets/s (its sensor's window) was at least its goal. */
    aCyclesMet?: number;
  };
}

export async function runPolicy(
  tb: TestbedState,
  policy: PolicyRun,
  rep: number,
  plan: GoalPlan,
  timing: Timing,
  backend: ReturnType<typeof createActuatorBackend>,
  /** Every cycle record of a managed run, as it comes (a trace for whoever iterates on the policy). */
  onCycle?: (r: CycleRecord) => void,
): Promise<GoalRun> {
  const a = tb.partitions.find((p) => p.name === "a")!;
  const b = tb.partitions.find((p) => p.name === "b")!;
  const records: CycleRecord[] = [];
  let manager: Manager | null = null;
  let loop: Promise<unknown> | null = null;
  const ac = new AbortController();
  const restoreShares: Array<[string, string]> = [];
  const write = (f: string, v: string) => {
    restoreShares.push([f, fs.readFileSync(f, "utf8").trim()]);
    fs.writeFileSync(f, v);
  };
  if (policy === "hand-cap-long") {
    const cpuDir = path.dirname(sharesFile(a));
    // quota first to -1 so no period/quota pair in between is refused; restored in reverse
    write(path.join(cpuDir, "cpu.cfs_quota_us"), "-1");
    write(path.join(cpuDir, "cpu.cfs_period_us"), String(LONG_SLICE_PERIOD_US));
    write(
      path.join(cpuDir, "cpu.cfs_quota_us"),
      String(Math.round(GOAL_FRACTION * LONG_SLICE_PERIOD_US)),
    );
    write(sharesFile(a), String(LONG_SLICE_SHARES.a));
    write(sharesFile(b), String(LONG_SLICE_SHARES.b));
  } else if (policy === "hand-10-1") {
    for (const [p, v] of [
      [a, HAND_SHARES.a],
      [b, HAND_SHARES.b],
    ] as const) {
      const f = sharesFile(p);
      restoreShares.push([f, fs.readFileSync(f, "utf8").trim()]);
      fs.writeFileSync(f, String(v));
    }
  } else {
    const capacity = policy === "weir-1cpu" ? 1000 : 2000 - RESERVE_CPU_MILLIS;
    const name = policy.startsWith("weir") ? "weir" : policy;
    manager = makeManager(
      tb,
      name,
      specsFor(tb, capacity, plan),
      capacity,
      backend,
      WEIR_SETTINGS[policy],
    );
    manager.subscribe((r) => {
      records.push(r);
      onCycle?.(r);
    });
    loop = manager.start(ac.signal);
  }
  const measureFrom = epochNow() + timing.warmupMs;
  let m: Measured;
  try {
    m = await measureTcp(tb, ["a", "b"], timing);
  } finally {
    ac.abort();
    if (loop) await loop;
    manager?.shutdown("restore");
    for (const [f, v] of restoreShares.reverse()) fs.writeFileSync(f, v);
  }
  const run: GoalRun = {
    policy,
    rep,
    plan,
    a: m.rate.a!,
    b: m.rate.b!,
    p99Ms: { a: m.p99Ms.a ?? Number.NaN, b: m.p99Ms.b ?? Number.NaN },
    cpuCores: { a: m.cpuCores.a ?? Number.NaN, b: m.cpuCores.b ?? Number.NaN },
    timedOut: m.timedOut,
    generatorCores: m.generatorCores,
  };
  const measured = records.filter((r) => r.startedAtMs >= measureFrom);
  if (measured.length > 0) {
    const of = (id: string) =>
      measured.map((r) => r.partitions.find((p) => p.id === id)).filter((p) => p !== undefined);
    const med = (xs: Array<number | null | undefined>) =>
      stats(xs.filter((x): x is number => typeof x === "number"))?.median ?? Number.NaN;
    const pa = of("a");
    const pb = of("b");
    const whys = pa.map((p) => p.decision?.why ?? "");
    run.diag = {
      aCpuMillis: med(pa.map((p) => p.directive?.cpuMillis)),
      bCpuMillis: med(pb.map((p) => p.directive?.cpuMillis)),
      aWeight: med(pa.map((p) => p.directive?.weight)),
      bWeight: med(pb.map((p) => p.directive?.weight)),
      aUsedCores: med(pa.map((p) => p.throughput?.cpuCores)),
      bUsedCores: med(pb.map((p) => p.throughput?.cpuCores)),
      aDelay: med(pa.map((p) => p.throughput?.cpuDelayFraction)),
      aVelocity: med(pa.map((p) => p.decision?.velocityPacketsPerCpuSec)),
      aPi: med(pa.map((p) => p.decision?.performanceIndex)),
      aDonorFraction: whys.filter((w) => /donates/.test(w)).length / Math.max(1, whys.length),
      aDonorCapFraction:
        pa.filter((p) => p.directive?.capReason === "goal-donor").length / Math.max(1, pa.length),
      aDelayIgnoredFraction:
        pa.filter(
          (p) =>
            /not constrained/.test(p.decision?.why ?? "") &&
            (p.throughput?.cpuDelayFraction ?? 0) >= DELAY_THRESHOLD,
        ).length / Math.max(1, pa.length),
      aWhy: whys[Math.floor(whys.length / 2)] ?? "",
      capacityCpuMillis: med(measured.map((r) => r.capacityCpuMillis)),
      aQuotaWrites: pa.filter((p) => p.written.includes("cpu.cfs_quota_us")).length,
      cycles: measured.length,
      aCyclesMet:
        pa.filter((p) => (p.throughput?.servedPacketsPerSec ?? -1) >= plan.goalPacketsPerSec)
          .length / Math.max(1, pa.length),
    };
  }
  return run;
}

/** What `down` must have removed (the testbed's namespaces, links, cgroups, processes), checked against the kernel's own listings. */
export function leftovers(tb: TestbedState): string[] {
  const rec = {
    netns: tb.partitions.map((p) => p.netns),
    links: tb.partitions.map((p) => p.hostIf),
    cgroups: tb.resources.filter((r) => r.kind === "cgroup").map((r) => r.id),
    pids: tb.resources.flatMap((r) => (r.kind === "process" && r.pid !== undefined ? [r.pid] : [])),
  };
  const left: string[] = [];
  const ns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const n of rec.netns) if (new RegExp(`^${n}\\b`, "m").test(ns)) left.push(`netns ${n}`);
  for (const l of rec.links) if (fs.existsSync(`/sys/class/net/${l}`)) left.push(`link ${l}`);
  for (const c of rec.cgroups) if (fs.existsSync(c)) left.push(`cgroup ${c}`);
  for (const pid of rec.pids) {
    try {
      if (!/^\S+ \(.*\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")))
        left.push(`pid ${pid}`);
    } catch {
      // gone
    }
  }
  return left;
}
