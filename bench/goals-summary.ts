// The goals-real report: per policy A served ÷ goal, B served ÷ surplus, p99 of both, what
// the managed policies set, and the figures against their budgets, from every run (goals-run.ts).

import { staticWeightOf } from "../src/policy/baselines/static-weights.ts";
import { DELAY_CONFIRM_AT_USE_FRACTION } from "../src/policy/demand.ts";
import {
  meetsGoalTargets,
  pairEfficiency,
  planGoal,
  scoreRun,
  surplusAtGoal,
} from "./goals-real-math.ts";
import {
  CONNECTIONS,
  DELAY_THRESHOLD,
  GENERATOR_CPU,
  GOAL_FRACTION,
  type GoalRun,
  HAND_SHARES,
  LABEL,
  LONG_SLICE_PERIOD_US,
  LONG_SLICE_SHARES,
  type Measured,
  POLICIES,
  type PolicyRun,
  SERVER_CPU,
  SOLO_WARMUP_MS,
  type Timing,
} from "./goals-run.ts";
import type { BenchFigure, BenchResult } from "./harness.ts";
import { fmtStats, repeated, stats } from "./harness.ts";
import { COST_ROUNDS, GROUP_CPU_SHARES } from "./real-common.ts";

const r = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");

export function summarise(
  runs: GoalRun[],
  solos: Measured[],
  info: { reps: number; timing: Timing; notes: string[] },
): Omit<BenchResult, "machine" | "date" | "command"> {
  const of = (p: PolicyRun) => runs.filter((x) => x.policy === p);
  const score = (x: GoalRun) => scoreRun(x.plan, x.a, x.b);
  /** B ÷ surplus counted from the solo run before the run alone (how it was scored before). */
  const bBeforeOnly = (x: GoalRun) =>
    x.solo
      ? scoreRun(planGoal(x.solo.before, GOAL_FRACTION), x.a, x.b).bOverSurplusRequests
      : Number.NaN;
  /** The host's drift across a run: A's solo packets/s after ÷ before. */
  const drift = (x: GoalRun) =>
    x.solo ? x.solo.after.packetsPerSec / x.solo.before.packetsPerSec : Number.NaN;
  /** Replies per CPU-second of one server over the measured window (its cgroup's cpuacct). */
  const repliesPerCpuSec = (x: GoalRun, p: "a" | "b") => x[p].requestsPerSec / x.cpuCores[p];
  /** B's replies per CPU-second ÷ A's: below 1 when B gets less out of its CPU than A does. */
  const bOverAEfficiency = (x: GoalRun) => repliesPerCpuSec(x, "b") / repliesPerCpuSec(x, "a");
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
        xs.map((x) => pairEfficiency(x.plan, x.a, x.b)),
        2,
      ),
      fmtStats(
        xs.map((x) => surplusAtGoal(x.plan, x.a, x.b)),
        2,
      ),
      fmtStats(
        xs.map((x) => x.generatorCores),
        2,
      ),
      fmtStats(xs.map(bBeforeOnly), 2),
      fmtStats(
        xs.map((x) => repliesPerCpuSec(x, "a")),
        0,
      ),
      fmtStats(
        xs.map((x) => repliesPerCpuSec(x, "b")),
        0,
      ),
      fmtStats(xs.map(bOverAEfficiency), 2),
    ];
  });
  const diagRows = (
    [
      "weir",
      "weir-1cpu",
      "weir-untrimmed",
      "weir-period-200",
      "weir-period-500",
      "weir-no-donor-cap",
      "weir-goal-cycles",
      "koordinator-style",
      "static-weights",
      "none",
    ] as const
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
      d((x) => x.aDonorCapFraction, 0, 100),
      d((x) => x.capacityCpuMillis),
      d((x) => x.aQuotaWrites),
      d((x) => x.cycles),
      d((x) => x.aCyclesMet ?? Number.NaN, 0, 100),
    ];
  });
  const med = (p: PolicyRun, f: (s: ReturnType<typeof score>) => number) =>
    stats(of(p).map((x) => f(score(x))))?.median ?? Number.NaN;
  /** Median, range and reps of one score over a policy's runs (two decimals). */
  const rep = (p: PolicyRun, f: (s: ReturnType<typeof score>) => number) =>
    repeated(
      of(p).map((x) => f(score(x))),
      2,
    );
  const wA = med("weir", (s) => s.aOverGoal);
  const wB = med("weir", (s) => s.bOverSurplusRequests);
  const figures: BenchFigure[] = [
    {
      name: "weir: A served ÷ goal (packets/s as the sensor counts, median)",
      ...rep("weir", (s) => s.aOverGoal),
      unit: "x",
      target: "1.0–1.15",
      meets: wA >= 1 && wA <= 1.15,
    },
    {
      name: "weir: B served ÷ surplus (replies/s; surplus from A's solo runs just before and after each run; median)",
      ...rep("weir", (s) => s.bOverSurplusRequests),
      unit: "x",
      target: ">= 0.7",
      meets: wB >= 0.7,
    },
    {
      name: "weir: B served ÷ surplus counted from the solo run before only (as this benchmark scored it before bracketing; median)",
      ...repeated(of("weir").map(bBeforeOnly), 2),
      unit: "x",
    },
    {
      name: "weir: A's p99 round trip, ms (median; under a donor cap A waits out the rest of its CFS period once its quota is spent)",
      ...repeated(
        of("weir").map((x) => x.p99Ms.a),
        1,
      ),
      unit: "ms",
    },
    ...(
      [
        ["weir-untrimmed", "weir, donor cap untrimmed (as before the trim)"],
        ["weir-period-200", "weir, donor cap over 200 ms periods"],
        ["weir-period-500", "weir, donor cap over 500 ms periods"],
        ["weir-no-donor-cap", "weir without the donor cap"],
        ["weir-goal-cycles", "weir, goals in 99 % of cycles"],
      ] as const
    ).flatMap(([p, label]): BenchFigure[] => [
      {
        name: `${label}: B served ÷ surplus (replies/s, median)`,
        ...rep(p, (x) => x.bOverSurplusRequests),
        unit: "x",
      },
      { name: `${label}: A served ÷ goal (median)`, ...rep(p, (x) => x.aOverGoal), unit: "x" },
      {
        name: `${label}: A's p99 round trip, ms (median)`,
        ...repeated(
          of(p).map((x) => x.p99Ms.a),
          1,
        ),
        unit: "ms",
      },
    ]),
    {
      name: "plain CFS: A served ÷ goal (median)",
      ...rep("none", (s) => s.aOverGoal),
      unit: "x",
    },
    {
      name: "hand-set 10:1: B served ÷ surplus (replies/s, median)",
      ...rep("hand-10-1", (s) => s.bOverSurplusRequests),
      unit: "x",
    },
    {
      name: "hand-set long slices (A capped at its goal's share of the CPU, 500 ms periods): B served ÷ surplus (replies/s, median)",
      ...rep("hand-cap-long", (s) => s.bOverSurplusRequests),
      unit: "x",
    },
    {
      name: "hand-set long slices: A served ÷ goal (median)",
      ...rep("hand-cap-long", (s) => s.aOverGoal),
      unit: "x",
    },
    {
      name: "weir: B's replies per CPU-second ÷ A's (each server's cgroup CPU over the measured window; median)",
      ...repeated(of("weir").map(bOverAEfficiency), 2),
      unit: "x",
    },
    {
      name: "every policy: (A + B) ÷ A's solo replies/s, the pair's total (median of all runs; B ≥ 0.7 × surplus beside A at its goal needs ≥ 0.94)",
      ...repeated(
        runs.map((x) => pairEfficiency(x.plan, x.a, x.b)),
        2,
      ),
      unit: "x",
    },
  ];
  // Per run of each weir variant: the solo runs around it, and what A took of the CPU.
  const perRun = runs
    .filter((x) => x.policy.startsWith("weir"))
    .sort((x, y) => x.rep - y.rep || POLICIES.indexOf(x.policy) - POLICIES.indexOf(y.policy))
    .map((x) => {
      const sc = score(x);
      const solo = x.plan.goalPacketsPerSec + x.plan.surplusPacketsPerSec;
      const used = x.diag?.aUsedCores ?? Number.NaN;
      return [
        x.policy,
        String(x.rep + 1),
        x.solo ? `${r(x.solo.before.packetsPerSec)} → ${r(x.solo.after.packetsPerSec)}` : "–",
        r(drift(x), 3),
        r(sc.aOverGoal, 3),
        r(sc.bOverSurplusRequests, 2),
        r(bBeforeOnly(x), 2),
        r(used, 2),
        r(x.a.packetsPerSec / used / solo, 3),
        r(pairEfficiency(x.plan, x.a, x.b), 3),
      ];
    });
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
      `Where ${LABEL[p]} misses (${missed.join(", ")}; medians): it set A's entitlement to ${r(m((d) => d.aCpuMillis))}m and B's to ${r(m((d) => d.bCpuMillis))}m, weights ${r(aw)} : ${r(bw)}, so on the one CPU both servers share the kernel gives A about ${((aw / (aw + bw)) * 100).toFixed(0)} % of it; goal ÷ solo is ${Math.round(GOAL_FRACTION * 100)} %. A used ${m((d) => d.aUsedCores).toFixed(2)} cores with CPU delay ${(m((d) => d.aDelay) * 100).toFixed(0)} %, performance index ${m((d) => d.aPi).toFixed(2)}, velocity ${r(m((d) => d.aVelocity))} packets per CPU-second (goal ÷ velocity = ${r(med(p, (s) => s.aOverGoal) > 0 ? (stats(xs.map((x) => x.plan.goalPacketsPerSec))!.median / m((d) => d.aVelocity)) * 1000 : Number.NaN)}m). In ${(m((d) => d.aDelayIgnoredFraction) * 100).toFixed(0)} % of cycles A's demand was "not constrained" although its CPU delay was at or above cpuDelayThreshold (${DELAY_THRESHOLD * 100} %): delay confirms congestion only while a partition uses at least ${DELAY_CONFIRM_AT_USE_FRACTION * 100} % of its entitlement (DELAY_CONFIRM_AT_USE_FRACTION)${p === "weir" ? " (capacity configured as 1.7 CPUs; weir holds it to the 1,000m of the one CPU the servers can reach, their thread affinity)" : " (capacity here is the one CPU they share)"}. A was a donor (claiming only its applied entitlement × PI × (1 + goalHeadroom)) in ${(m((d) => d.aDonorFraction) * 100).toFixed(0)} % of cycles${m((d) => d.aDonorFraction) >= 0.5 && m((d) => d.aPi) > 1 ? `, while missing its goal (A + B used ${(m((d) => d.aUsedCores) + m((d) => d.bUsedCores)).toFixed(2)} cores of that CPU)` : ""}. B served ${r(stats(xs.map((x) => repliesPerCpuSec(x, "b")))?.median ?? Number.NaN)} replies per CPU-second against A's ${r(stats(xs.map((x) => repliesPerCpuSec(x, "a")))?.median ?? Number.NaN)} (each cgroup's CPU over the measured window): it runs in the gaps A leaves and is preempted at A's wake-ups, so the CPU A leaves buys B fewer replies than the surplus (counted at A's solo rate) assumes. Together the two served ${r(stats(xs.map((x) => pairEfficiency(x.plan, x.a, x.b)))?.median ?? Number.NaN, 2)}× A's solo replies/s (every policy's runs: ${r(stats(runs.map((x) => pairEfficiency(x.plan, x.a, x.b)))?.median ?? Number.NaN, 2)}×); with A at exactly its goal that total leaves B ${r(stats(xs.map((x) => surplusAtGoal(x.plan, x.a, x.b)))?.median ?? Number.NaN, 2)}× the surplus, and B's 0.7× beside A at its goal needs the pair at 0.94× or more.`,
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
          "(A + B) ÷ A solo (replies)",
          "B ÷ surplus with A at exactly its goal",
          "generator CPU (cores)",
          "B ÷ surplus from the solo run before only",
          "A replies per CPU-second",
          "B replies per CPU-second",
          "B ÷ A replies per CPU-second",
        ],
        rows,
      },
      {
        title:
          "Each weir run: A's solo packets/s just before → just after it (the host's drift), A served ÷ goal, B served ÷ surplus (replies; from both solo runs, and from the one before only), A's CPU, A's packets per CPU-second ÷ its solo packets/s (below 1: the host ran slower than its solo runs say, or sharing cost A), the pair's total ÷ A's solo",
        columns: [
          "run (policy name, as --policies takes it)",
          "rep",
          "A solo pps before → after",
          "after ÷ before",
          "A ÷ goal",
          "B ÷ surplus",
          "B ÷ surplus (before only)",
          "A used cores",
          "A pps per CPU-s ÷ solo",
          "(A + B) ÷ A solo",
        ],
        rows: perRun,
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
          "A donor-capped % cycles",
          "capacity in force m",
          "A quota writes (count in the measured cycles)",
          "measured cycles (count)",
          "A at or over its goal, % of measured cycles",
        ],
        rows: diagRows,
      },
    ],
    notes: [
      `A solo, measured before and after every run (B's server SIGSTOPped by PID, plain CFS, no manager, ${SOLO_WARMUP_MS / 1000} s warm-up then ${info.timing.soloMs / 1000} s): ${fmtStats(soloRps, 0)} replies/s, ${fmtStats(soloPps, 0)} packets/s on the host veth's rx (${fmtStats(ppr, 2)} packets per reply: replies carry the ACKs), p99 ${fmtStats(
        solos.map((x) => x.p99Ms.a ?? Number.NaN),
        1,
      )} ms, over ${solos.length} solo runs; across one run (solo after ÷ solo before): ${fmtStats(runs.map(drift), 3)}.`,
      `Goal = ${Math.round(GOAL_FRACTION * 100)} % of the packets/s of the solo run just before the run (what weir is given); surplus = solo − goal, with solo the mean of the solo runs just before and just after it (so the host's drift during a repetition is not scored as the policy's doing: a goal held in packets/s turns each 1 % the host loses into ${r(1 / (1 - GOAL_FRACTION), 0)} % of the surplus); the column "from the solo run before only" scores B as the benchmark did before. B's server does the same work per reply as A's (${COST_ROUNDS} SHA-256 rounds), so "B served ÷ surplus (replies)" is B's replies/s ÷ the surplus in A's replies/s (goal packets/s ÷ A's solo packets per reply); the packets column divides B's packets/s by the surplus in A's packets/s, which differs when B's ACKs per reply differ from A's solo ones.`,
      `Setup: both servers' threads pinned to CPU ${SERVER_CPU} (taskset -a -p on the PIDs the testbed recorded); this process (closed-loop generator, ${CONNECTIONS} connections per server, no think time, and the manager) pinned to CPU ${GENERATOR_CPU}, in its own cpu cgroup of cpu.shares ${GROUP_CPU_SHARES}. Each run: ${info.timing.warmupMs / 1000} s warm-up then ${info.timing.measureMs / 1000} s measured; ${info.reps} repetitions, each running every policy in turn (order rotated per repetition). Served = host veth rx packets/s (weir's sensor) and replies/s (the client) over the measured window; p99 is the client's round trip.`,
      `weir is run twice: with capacity 1,700m (2 CPUs minus 300m reserve, as scenarios-real wires it) and with capacity 1,000m (the one CPU the servers can run on). Static weights map importance 1 -> cpu.weight ${sw[0]}, importance 3 -> ${sw[1]}: a ${(sw[0]! / sw[1]!).toFixed(2)}:1 ratio, not 10:1; the hand-set run writes cpu.shares ${HAND_SHARES.a} and ${HAND_SHARES.b} (10:1) directly, with no manager, and restores the previous values after. The long-slices run (no manager either) writes A's cpu.cfs_period_us ${LONG_SLICE_PERIOD_US} and cpu.cfs_quota_us ${Math.round(GOAL_FRACTION * LONG_SLICE_PERIOD_US)} (${GOAL_FRACTION * 100} % of the CPU, its goal's share of its solo rate) and cpu.shares ${LONG_SLICE_SHARES.a}:${LONG_SLICE_SHARES.b}, so B runs mostly while A is throttled, in one block per period, and restores all of them after: a lever measured here, not something weir does.`,
      weirRuns.length > 0
        ? `weir's median reason for A (one run): "${weirRuns[0]!.diag!.aWhy}"`
        : "",
      ...misses,
      ...info.notes,
    ].filter((n) => n !== ""),
  };
}
