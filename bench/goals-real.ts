// Goals that mean what WLM means, on the real testbed. Two partitions (netns + veth + cgroup v1,
// one SHA-256 packet server each, answering closed-loop TCP), both servers pinned to the same
// CPU and both saturated by closed-loop TCP clients. A (importance 1) gets a goal of 80 % of
// what it serves alone; B (importance 3) has none. A goal-managed policy should hold A just
// above its goal and give B the rest (the surplus); plain CFS splits the CPU in two (A misses
// its goal) and fixed weights give A what its weight says whatever its goal (B starves).
//
// Rates are counted as weir's sensor counts them (host-side veth: offered = tx, served = rx:
// replies plus ACKs) and as the client counts them (replies/s). A's solo rate is measured first
// with B's server SIGSTOPped (by PID; SIGCONT after). Repetitions are interleaved: every
// repetition runs every policy in turn (order rotated per repetition); figures are
// median [min–max] over repetitions.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench goals-real [--quick] [--reps N]
//  or: npx tsx bench/goals-real.ts [--json] [--quick] [--reps N]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord, PartitionSpec } from "../src/core/model.ts";
import { Manager, type PartitionWiring } from "../src/manager/manager.ts";
import { staticWeightOf } from "../src/policy/baselines/static-weights.ts";
import { DELAY_CONFIRM_AT_USE_FRACTION } from "../src/policy/demand.ts";
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import { openPartitionSensor } from "../src/sensors/partition.ts";
import { throughputFromSamples } from "../src/sensors/throughput.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { policyFactories } from "../src/sim/policies.ts";
import type { TestbedPartition, TestbedState } from "../src/testbed/state.ts";
import { runTcpLoad, type TcpLoadResult } from "../src/testbed/tcp-load.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  epochNow,
  GROUP_CPU_SHARES,
  loadAvg,
  RESERVE_CPU_MILLIS,
  rotate,
} from "./conservation-real.ts";
import {
  counterRate,
  type GoalPlan,
  meetsGoalTargets,
  parseCounter,
  planGoal,
  type Rate,
  scoreRun,
} from "./goals-real-math.ts";
import type { BenchFigure, Benchmark, BenchResult } from "./harness.ts";
import { fmtStats, isMain, isolateSelf, realBenchReps, runStandalone, stats } from "./harness.ts";

const COST_ROUNDS = 40;
export const INTERVAL_MS = 100;
/** Closed-loop connections per server: enough that its one thread always has a request queued. */
export const CONNECTIONS = 8;
const GOAL_FRACTION = 0.8;
const DELAY_THRESHOLD = defaultPolicyKnobs(1000).cpuDelayThreshold;
/** The CPU both servers are pinned to; the generator and manager are pinned to the other one. */
export const SERVER_CPU = 1;
export const GENERATOR_CPU = 0;
/** Hand-set cpu.shares for the "10:1" run (no manager). */
const HAND_SHARES = { a: 10_240, b: 1024 };

type PolicyRun =
  | "weir"
  | "weir-1cpu"
  | "none"
  | "static-weights"
  | "hand-10-1"
  | "koordinator-style";
const POLICIES: readonly PolicyRun[] = [
  "weir",
  "weir-1cpu",
  "none",
  "static-weights",
  "hand-10-1",
  "koordinator-style",
];
const LABEL: Record<PolicyRun, string> = {
  weir: "weir (capacity 1.7 CPUs, as scenarios-real)",
  "weir-1cpu": "weir (capacity 1 CPU: the pinned one)",
  none: "none (plain CFS)",
  "static-weights": "static weights (importance 1 vs 3)",
  "hand-10-1": "hand-set cpu.shares 10:1 (no manager)",
  "koordinator-style": "Koordinator-style",
};

interface Timing {
  warmupMs: number;
  measureMs: number;
  soloMs: number;
}
const timingFor = (quick: boolean): Timing =>
  quick
    ? { warmupMs: 1500, measureMs: 4000, soloMs: 4000 }
    : { warmupMs: 2000, measureMs: 9000, soloMs: 8000 };

// ---------------------------------------------------------------------------------------------
// Host plumbing (files read here, parsed in goals-real-math.ts).

export const readCounter = (ifName: string, name: "rx_packets" | "tx_packets"): number => {
  const f = `/sys/class/net/${ifName}/statistics/${name}`;
  return parseCounter(fs.readFileSync(f, "utf8"), f);
};

/** Pin every thread of `pid` to `cpus` (taskset -a -p); returns the previous list. */
export function pin(pid: number, cpus: string): string {
  const before = execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], {
    encoding: "utf8",
  });
  const m = /current affinity list: (\S+)/.exec(before);
  return m?.[1] ?? "0-1";
}

const sharesFile = (p: TestbedPartition): string => {
  const f = p.cgroupDirs.map((d) => path.join(d, "cpu.shares")).find((x) => fs.existsSync(x));
  if (!f) throw new Error(`goals-real: no cpu.shares for partition ${p.name} (cgroup v1 only)`);
  return f;
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------

export interface Measured {
  rate: Record<string, Rate>;
  p99Ms: Record<string, number>;
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
  let t0 = 0;
  const mark = setTimeout(() => {
    t0 = performance.now();
    rx0 = Object.fromEntries(parts.map((p) => [p.name, readCounter(p.hostIf, "rx_packets")]));
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
  }
  return {
    rate,
    p99Ms,
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

export function makeManager(
  tb: TestbedState,
  policyName: string,
  specs: PartitionSpec[],
  capacity: number,
  backend: ReturnType<typeof createActuatorBackend>,
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
  const wiring: PartitionWiring[] = specs.map((spec) => {
    const p = tb.partitions.find((x) => x.name === spec.id)!;
    return {
      spec,
      source: "host",
      openSensor: () =>
        openPartitionSensor(
          {
            cgroup: p.cgroup,
            interfaces: [{ name: p.hostIf, offered: "tx", served: "rx" }],
            ...(p.serverPid ? { pid: p.serverPid } : {}),
          },
          defaultRoots,
        ),
      openActuator: () => backend.open({ partition: spec.id, cgroup: p.cgroup }),
    };
  });
  return new Manager({
    now: epochNow,
    intervalMs: INTERVAL_MS,
    policy,
    knobs: defaultPolicyKnobs(capacity),
    partitions: wiring,
    throughput: throughputFromSamples,
    historySize: 1,
  });
}

export interface GoalRun {
  policy: PolicyRun;
  rep: number;
  /** This repetition's goal and surplus (from its own solo measurement). */
  plan: GoalPlan;
  a: Rate;
  b: Rate;
  p99Ms: { a: number; b: number };
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
    /** Share of cycles A's demand was "not constrained" while its CPU delay was above the threshold. */
    aDelayIgnoredFraction: number;
    aWhy: string;
  };
}

async function runPolicy(
  tb: TestbedState,
  policy: PolicyRun,
  rep: number,
  plan: GoalPlan,
  timing: Timing,
  backend: ReturnType<typeof createActuatorBackend>,
): Promise<GoalRun> {
  const a = tb.partitions.find((p) => p.name === "a")!;
  const b = tb.partitions.find((p) => p.name === "b")!;
  const records: CycleRecord[] = [];
  let manager: Manager | null = null;
  let loop: Promise<unknown> | null = null;
  const ac = new AbortController();
  const restoreShares: Array<[string, string]> = [];
  if (policy === "hand-10-1") {
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
    const name = policy === "weir-1cpu" ? "weir" : policy;
    manager = makeManager(tb, name, specsFor(tb, capacity, plan), capacity, backend);
    manager.subscribe((r) => records.push(r));
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
    for (const [f, v] of restoreShares) fs.writeFileSync(f, v);
  }
  const run: GoalRun = {
    policy,
    rep,
    plan,
    a: m.rate.a!,
    b: m.rate.b!,
    p99Ms: { a: m.p99Ms.a ?? Number.NaN, b: m.p99Ms.b ?? Number.NaN },
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
      aDonorFraction: whys.filter((w) => /donat|donor/i.test(w)).length / Math.max(1, whys.length),
      aDelayIgnoredFraction:
        pa.filter(
          (p) =>
            /not constrained/.test(p.decision?.why ?? "") &&
            (p.throughput?.cpuDelayFraction ?? 0) >= DELAY_THRESHOLD,
        ).length / Math.max(1, pa.length),
      aWhy: whys[Math.floor(whys.length / 2)] ?? "",
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

export const bench: Benchmark = {
  name: "goals-real",
  description:
    "goals as WLM means them on the real testbed: two closed-loop-saturated packet servers pinned to one CPU, A (importance 1) with a goal at 80 % of its solo rate, B (importance 3) without; A served ÷ goal, B served ÷ surplus, p99, for weir and the baselines, interleaved repetitions, median [min–max] (root)",
  async run(ctx) {
    const reps = realBenchReps("goals-real", ctx);
    const timing = timingFor(ctx.quick);
    const runMs = timing.warmupMs + timing.measureMs;
    const totalMs = reps * (timing.soloMs + POLICIES.length * runMs);
    const load0 = loadAvg();
    const started = Date.now();
    const prefix = `wg${process.pid % 100000}`;
    const tb = await testbedUp({
      prefix,
      partitions: [{ name: "a" }, { name: "b" }],
      costRounds: COST_ROUNDS,
      maxLifetimeMs: totalMs * 2 + 10 * 60_000,
      groupCpuShares: GROUP_CPU_SHARES,
    });
    const runs: GoalRun[] = [];
    const notes: string[] = [];
    let unisolate = () => {};
    let selfAffinity: string | null = null;
    const solos: Measured[] = [];
    try {
      unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
      const a = tb.partitions.find((p) => p.name === "a")!;
      const b = tb.partitions.find((p) => p.name === "b")!;
      if (!a.serverPid || !b.serverPid)
        throw new Error("goals-real: the testbed recorded no server pid");
      pin(a.serverPid, String(SERVER_CPU));
      pin(b.serverPid, String(SERVER_CPU));
      selfAffinity = pin(process.pid, String(GENERATOR_CPU));
      const backend = createActuatorBackend("cgroup", {
        cgroupfs: defaultRoots.cgroupfs,
        now: epochNow,
      });

      // A alone: B's server stopped (by pid), plain CFS, no manager.
      const soloRun = async () => {
        process.kill(b.serverPid!, "SIGSTOP");
        try {
          return await measureTcp(tb, ["a"], { warmupMs: 1000, measureMs: timing.soloMs });
        } finally {
          process.kill(b.serverPid!, "SIGCONT");
        }
      };
      let doneMs = 0;
      for (let rep = 0; rep < reps; rep++) {
        // Each repetition's goal from its own solo run: the host's speed drifts between them.
        ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} A solo`);
        const solo = await soloRun();
        solos.push(solo);
        const plan = planGoal(solo.rate.a!, GOAL_FRACTION);
        doneMs += timing.soloMs;
        await sleep(300);
        for (const policy of rotate(POLICIES, rep)) {
          ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} ${policy}`);
          runs.push(await runPolicy(tb, policy, rep, plan, timing, backend));
          doneMs += runMs;
          await sleep(300);
        }
      }
    } finally {
      if (selfAffinity) pin(process.pid, selfAffinity);
      unisolate();
      await testbedDown(tb.stateFile);
    }
    const left = leftovers(tb);
    if (left.length > 0)
      notes.push(`LEFT BEHIND after testbed down (a defect): ${left.join(", ")}.`);
    const load1 = loadAvg();
    return summarise(runs, solos, {
      reps,
      timing,
      notes: [
        ...notes,
        `Load average (1, 5, 15 min): ${load0} at the start, ${load1} at the end (2 CPUs, shared with other work). Wall time ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
        left.length === 0
          ? "After testbed down, none of its namespaces, veths, cgroups or processes was left (checked against ip netns, /sys/class/net, the cgroup trees and /proc)."
          : "",
      ].filter((n) => n !== ""),
    });
  },
};

const r = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");

export function summarise(
  runs: GoalRun[],
  solos: Measured[],
  info: { reps: number; timing: Timing; notes: string[] },
): Omit<BenchResult, "machine" | "date" | "command"> {
  const of = (p: PolicyRun) => runs.filter((x) => x.policy === p);
  const score = (x: GoalRun) => scoreRun(x.plan, x.a, x.b);
  const plans = solos.map((s) => planGoal(s.rate.a!, GOAL_FRACTION));
  const rows = POLICIES.map((p) => {
    const xs = of(p);
    return [
      LABEL[p],
      fmtStats(
        xs.map((x) => score(x).aOverGoal),
        2,
      ),
      fmtStats(
        xs.map((x) => score(x).bOverSurplusRequests),
        2,
      ),
      fmtStats(
        xs.map((x) => score(x).bOverSurplusPackets),
        2,
      ),
      fmtStats(
        xs.map((x) => x.a.requestsPerSec),
        0,
      ),
      fmtStats(
        xs.map((x) => x.b.requestsPerSec),
        0,
      ),
      fmtStats(
        xs.map((x) => x.p99Ms.a),
        1,
      ),
      fmtStats(
        xs.map((x) => x.p99Ms.b),
        1,
      ),
      `${xs.filter((x) => meetsGoalTargets(score(x)).a).length}/${xs.length}`,
      fmtStats(
        xs.map((x) => x.generatorCores),
        2,
      ),
    ];
  });
  const diagRows = (
    ["weir", "weir-1cpu", "koordinator-style", "static-weights", "none"] as const
  ).map((p) => {
    const xs = of(p).filter((x) => x.diag);
    const d = (f: (x: NonNullable<GoalRun["diag"]>) => number, digits = 0, scale = 1) =>
      fmtStats(
        xs.map((x) => f(x.diag!)),
        digits,
        scale,
      );
    return [
      LABEL[p],
      d((x) => x.aCpuMillis),
      d((x) => x.bCpuMillis),
      d((x) => x.aWeight),
      d((x) => x.bWeight),
      d((x) => x.aUsedCores, 2),
      d((x) => x.bUsedCores, 2),
      d((x) => x.aDelay, 0, 100),
      d((x) => x.aVelocity),
      d((x) => x.aPi, 2),
      d((x) => x.aDonorFraction, 0, 100),
    ];
  });
  const med = (p: PolicyRun, f: (s: ReturnType<typeof score>) => number) =>
    stats(of(p).map((x) => f(score(x))))?.median ?? Number.NaN;
  const wA = med("weir", (s) => s.aOverGoal);
  const wB = med("weir", (s) => s.bOverSurplusRequests);
  const figures: BenchFigure[] = [
    {
      name: "weir: A served ÷ goal (packets/s as the sensor counts, median)",
      value: Math.round(wA * 100) / 100,
      unit: "x",
      target: "1.0–1.15",
      meets: wA >= 1 && wA <= 1.15,
    },
    {
      name: "weir: B served ÷ surplus (replies/s, median)",
      value: Math.round(wB * 100) / 100,
      unit: "x",
      target: ">= 0.7",
      meets: wB >= 0.7,
    },
    {
      name: "plain CFS: A served ÷ goal (median)",
      value: Math.round(med("none", (s) => s.aOverGoal) * 100) / 100,
      unit: "x",
    },
    {
      name: "hand-set 10:1: B served ÷ surplus (replies/s, median)",
      value: Math.round(med("hand-10-1", (s) => s.bOverSurplusRequests) * 100) / 100,
      unit: "x",
    },
  ];
  const soloRps = solos.map((x) => x.rate.a!.requestsPerSec);
  const soloPps = solos.map((x) => x.rate.a!.packetsPerSec);
  const ppr = solos.map((x) => x.rate.a!.packetsPerSec / x.rate.a!.requestsPerSec);
  const sw = [staticWeightOf(1, 100), staticWeightOf(3, 100)];
  const weirRuns = of("weir").filter((x) => x.diag);
  const med3 = "median [min–max] over repetitions";
  // Where weir misses a target: what it set and what the kernel gave, from the measured cycles.
  const misses: string[] = [];
  for (const p of ["weir", "weir-1cpu"] as const) {
    const xs = of(p).filter((x) => x.diag);
    if (xs.length === 0) continue;
    const a = med(p, (s) => s.aOverGoal);
    const b = med(p, (s) => s.bOverSurplusRequests);
    const m = (f: (d: NonNullable<GoalRun["diag"]>) => number) =>
      stats(xs.map((x) => f(x.diag!)))?.median ?? Number.NaN;
    const aw = m((d) => d.aWeight);
    const bw = m((d) => d.bWeight);
    const missed: string[] = [];
    if (!(a >= 1 && a <= 1.15)) missed.push(`A at ${a.toFixed(2)}× its goal`);
    if (!(b >= 0.7)) missed.push(`B at ${b.toFixed(2)}× the surplus`);
    if (missed.length === 0) continue;
    misses.push(
      `Where ${LABEL[p]} misses (${missed.join(", ")}; medians): it set A's entitlement to ${r(m((d) => d.aCpuMillis))}m and B's to ${r(m((d) => d.bCpuMillis))}m, weights ${r(aw)} : ${r(bw)}, so on the one CPU both servers share the kernel gives A about ${((aw / (aw + bw)) * 100).toFixed(0)} % of it; goal ÷ solo is ${Math.round(GOAL_FRACTION * 100)} %. A used ${m((d) => d.aUsedCores).toFixed(2)} cores with CPU delay ${(m((d) => d.aDelay) * 100).toFixed(0)} %, performance index ${m((d) => d.aPi).toFixed(2)}, velocity ${r(m((d) => d.aVelocity))} packets per CPU-second (goal ÷ velocity = ${r(med(p, (s) => s.aOverGoal) > 0 ? (stats(xs.map((x) => x.plan.goalPacketsPerSec))!.median / m((d) => d.aVelocity)) * 1000 : Number.NaN)}m). In ${(m((d) => d.aDelayIgnoredFraction) * 100).toFixed(0)} % of cycles A's demand was "not constrained" although its CPU delay was at or above cpuDelayThreshold (${DELAY_THRESHOLD * 100} %): delay confirms congestion only while a partition uses at least ${DELAY_CONFIRM_AT_USE_FRACTION * 100} % of its entitlement (DELAY_CONFIRM_AT_USE_FRACTION)${p === "weir" ? ", and A's entitlement is a share of 1.7 CPUs while it can reach only one" : " (capacity here is the one CPU they share)"}. A was a donor (claiming only its applied entitlement × PI × (1 + goalHeadroom)) in ${(m((d) => d.aDonorFraction) * 100).toFixed(0)} % of cycles${m((d) => d.aDonorFraction) >= 0.5 && m((d) => d.aPi) > 1 ? `, while missing its goal (A + B used ${(m((d) => d.aUsedCores) + m((d) => d.bUsedCores)).toFixed(2)} cores of that CPU)` : ""}. B served ${r(stats(xs.map((x) => x.b.requestsPerSec / (x.diag?.bUsedCores ?? Number.NaN)))?.median ?? Number.NaN)} replies per CPU-second against A's ${r(stats(xs.map((x) => x.a.requestsPerSec / (x.diag?.aUsedCores ?? Number.NaN)))?.median ?? Number.NaN)}: it runs in the gaps A leaves and is preempted at A's wake-ups, so the CPU A leaves buys B fewer replies than the surplus (counted at A's solo rate) assumes.`,
    );
  }
  return {
    name: "goals-real",
    figures,
    tables: [
      {
        title: `A (importance 1, goal ${Math.round(GOAL_FRACTION * 100)} % of its solo rate, per repetition) and B (importance 3, no goal), both saturated, one CPU (${med3})`,
        columns: [
          "policy",
          "A served ÷ goal",
          "B served ÷ surplus (replies)",
          "B served ÷ surplus (packets)",
          "A replies/s",
          "B replies/s",
          "p99 A ms",
          "p99 B ms",
          "A within 1.0–1.15× goal (runs)",
          "generator CPU (cores)",
        ],
        rows,
      },
      {
        title: `What the managed policies set and saw, medians over each run's measured cycles (${med3})`,
        columns: [
          "policy",
          "A entitlement m",
          "B entitlement m",
          "A weight",
          "B weight",
          "A used cores",
          "B used cores",
          "A CPU delay %",
          "A velocity pkt/CPU-s",
          "A perf. index",
          "A donor % cycles",
        ],
        rows: diagRows,
      },
    ],
    notes: [
      `A solo, measured at the start of every repetition (B's server SIGSTOPped by PID, plain CFS, no manager, ${info.timing.soloMs / 1000} s): ${fmtStats(soloRps, 0)} replies/s, ${fmtStats(soloPps, 0)} packets/s on the host veth's rx (${fmtStats(ppr, 2)} packets per reply: replies carry the ACKs), p99 ${fmtStats(
        solos.map((x) => x.p99Ms.a ?? Number.NaN),
        1,
      )} ms; per repetition: ${solos.map((x) => r(x.rate.a!.packetsPerSec)).join(", ")} packets/s.`,
      `Goal = ${Math.round(GOAL_FRACTION * 100)} % of that repetition's solo packets/s: ${plans.map((x) => x.goalPacketsPerSec).join(", ")} packets/s; surplus = solo − goal: ${plans.map((x) => r(x.surplusRequestsPerSec)).join(", ")} replies/s. B's server does the same work per reply as A's (${COST_ROUNDS} SHA-256 rounds), so "B served ÷ surplus (replies)" is B's replies/s ÷ the surplus in A's replies/s (goal packets/s ÷ A's solo packets per reply); the packets column divides B's packets/s by the surplus in A's packets/s, which differs when B's ACKs per reply differ from A's solo ones.`,
      `Setup: both servers' threads pinned to CPU ${SERVER_CPU} (taskset -a -p on the PIDs the testbed recorded); this process (closed-loop generator, ${CONNECTIONS} connections per server, no think time, and the manager) pinned to CPU ${GENERATOR_CPU}, in its own cpu cgroup of cpu.shares ${GROUP_CPU_SHARES}. Each run: ${info.timing.warmupMs / 1000} s warm-up then ${info.timing.measureMs / 1000} s measured; ${info.reps} repetitions, each running every policy in turn (order rotated per repetition). Served = host veth rx packets/s (weir's sensor) and replies/s (the client) over the measured window; p99 is the client's round trip.`,
      `weir is run twice: with capacity 1,700m (2 CPUs minus 300m reserve, as scenarios-real wires it) and with capacity 1,000m (the one CPU the servers can run on). Static weights map importance 1 -> cpu.weight ${sw[0]}, importance 3 -> ${sw[1]}: a ${(sw[0]! / sw[1]!).toFixed(2)}:1 ratio, not 10:1; the hand-set run writes cpu.shares ${HAND_SHARES.a} and ${HAND_SHARES.b} (10:1) directly, with no manager, and restores the previous values after.`,
      weirRuns.length > 0
        ? `weir's median reason for A (one run): "${weirRuns[0]!.diag!.aWhy}"`
        : "",
      ...misses,
      ...info.notes,
    ].filter((n) => n !== ""),
  };
}

if (isMain(import.meta.url)) await runStandalone(bench);
