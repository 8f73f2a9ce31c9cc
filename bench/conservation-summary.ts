// The conservation-real report: tables, figures against their budgets and the "where weir
// loses" notes, from every run's outcome (conservation-run.ts). Over 400 lines: the four tables,
// the figures and the losses notes share the same per-outcome helpers (worst ratio, served,
// medians); the scheduler-trace table and notes are in conservation-waits.ts.
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import {
  fmtPooled,
  type PooledRatio,
  pooledFigure,
  pooledWorstRatio,
} from "./conservation-pooled.ts";
import {
  CONSERVATION_FACTORIES,
  CONSERVATION_POLICIES,
  OVERLOAD,
  OVERLOAD_POLICIES,
  REFERENCE_HOG_CAP,
  type RunOutcome,
  type ScenarioName,
  TCP_CONNECTIONS,
  type Timing,
  WEIR_GOAL_CYCLES,
  WEIR_UNPLACED,
} from "./conservation-run.ts";
import { blockedNote, waitNote as traceNote, WAIT_COLUMNS, waitRow } from "./conservation-waits.ts";
import type { BenchFigure, BenchResult } from "./harness.ts";
import { fmtStats, repeated, stats } from "./harness.ts";
import { type PartitionRatio, partitionMedianRatio, worstRatioOf } from "./partition-ratio.ts";
import { RESERVE_CPU_MILLIS } from "./real-common.ts";
import { PROBE_INTERVAL_US, SPIKE_US } from "./stall-probe.ts";

/**
 * Share of cycles in which a partition met its goal, from the manager's own record: each
 * cycle's served packets/s (the sensor's, over the cycle's window) at or above the goal, as
 * WLM counts its performance index per interval. Cycles without a reading are left out.
 *   overloadCycleMet([100, 99, 101, NaN], 100) = 2 / 3
 */
export function overloadCycleMet(servedPerCycle: number[], goalPacketsPerSec: number): number {
  const xs = servedPerCycle.filter(Number.isFinite);
  return xs.length > 0 ? xs.filter((x) => x >= goalPacketsPerSec).length / xs.length : Number.NaN;
}

/**
 * The overload note's sentence on what weir served a (medians, packets/s). Served under 99 % of
 * its offer, the goal, not the offer, set what a got (a donor: the rest of its requests wait in
 * its queue); served its whole offer (held per cycle: an open-loop goal partition, the default),
 * what is left of its p99 is its wait for a CPU beside b's and c's servers.
 */
export function overloadGoalEvidence(
  aServed: number,
  goal: number,
  offered: number,
  bcServed: number,
): string {
  const head = `weir served a ${Math.round(aServed)}/s (${(aServed / goal).toFixed(2)}× its goal of ${goal}/s, ${((aServed / offered) * 100).toFixed(0)} % of the ${Math.round(offered)}/s offered) and b + c ${Math.round(bcServed)}/s (medians)`;
  return aServed >= 0.99 * offered
    ? `${head}: a got its whole offer, so what is left of its p99 is its wait for a CPU beside b's and c's servers.`
    : `${head}: the goal, not a's offer, sets what a gets, and a's requests beyond it wait in its queue.`;
}

const POLICY_LABEL = (n: string) => CONSERVATION_FACTORIES.find((p) => p.name === n)?.label ?? n;
const NET = ["a", "b", "c"];

const HOGCAP_LABEL = `reference: static weights, hog hard-capped by hand at ${REFERENCE_HOG_CAP.capMillis}m (cpu.cfs_quota_us over ${REFERENCE_HOG_CAP.periodUs / 1000} ms periods, burst = quota)`;

/**
 * The cap experiment's note (issue 9): static weights with the hog hard-capped by hand against
 * the same policy without the cap — does a cap that leaves a CPU free of the hog part of the
 * time let the kernel pull queued servers there, and what does it cost the hog? Null without
 * capped runs.
 */
export function hogCapNote(
  capped: RunOutcome[],
  uncapped: RunOutcome[],
  ratio: (o: RunOutcome) => number,
): string | null {
  if (capped.length === 0 || uncapped.length === 0) return null;
  const m = (xs: RunOutcome[], f: (o: RunOutcome) => number) =>
    stats(xs.map(f).filter(Number.isFinite))?.median ?? Number.NaN;
  const side = (xs: RunOutcome[]) => {
    const traced = xs.filter((o) => o.schedWait);
    const wait = traced.length
      ? `, servers' p99 wait ${m(traced, (o) => o.schedWait!.p99WaitUs).toFixed(0)} µs, ${m(
          traced,
          (o) => (o.schedWait!.pulls * 1000) / Math.max(1, o.schedWait!.spanMs),
        ).toFixed(1)} queued servers pulled /s`
      : "";
    return `worst p99 ÷ no-hog ${m(xs, ratio).toFixed(2)}×, host idle ${(m(xs, (o) => o.hostIdle) * 100).toFixed(1)} %, hog ${m(xs, (o) => o.hogCores).toFixed(2)} cores${wait}`;
  };
  return `UDP — the hog hard-capped by hand (the cap experiment: a cap leaves a CPU without the hog part of the time, so it can go idle and pull a queued server), medians over ${capped.length} runs: static weights with the hog capped at ${REFERENCE_HOG_CAP.capMillis}m over ${REFERENCE_HOG_CAP.periodUs / 1000} ms periods (burst = quota): ${side(capped)}; the same without the cap: ${side(uncapped)}.`;
}

/** The tables, figures and "where weir loses" notes from every run's outcome. */
/**
 * The hog's share of the CPU the rest of the machine left it: hog ÷ (hog + idle cores). Other
 * work on a shared host (other tenants, this benchmark's own process) takes CPU no policy can
 * give the hog; this share says whether the policy held back what was left.
 */
export const hogShareOfLeftover = (o: Pick<RunOutcome, "hogCores" | "hostIdle" | "hostCpus">) =>
  o.hogCores / (o.hogCores + o.hostIdle * o.hostCpus);

export function summariseConservation(
  outcomes: RunOutcome[],
  info: { reps: number; timing: Timing; ppsPerCore: number; notes: string[] },
): Omit<BenchResult, "machine" | "date" | "command"> {
  const of = (scenario: ScenarioName, policy?: string) =>
    outcomes.filter(
      (o) => o.scenario === scenario && (policy === undefined || o.policy === policy),
    );
  /** Worst partition's p99 ratio to the same repetition's no-hog reference. */
  const worstRatio = (o: RunOutcome, ref: "ref-udp" | "ref-tcp") => worstRatioOf(o, of(ref), NET);
  /** Each partition's median ratio over the repetitions, the worst partition's (the target's reading). */
  const perPartition = (xs: RunOutcome[], ref: "ref-udp" | "ref-tcp") =>
    partitionMedianRatio(xs, of(ref), NET);
  const minServed = (o: RunOutcome) => Math.min(...NET.map((n) => o.served[n] ?? Number.NaN));
  /** The longest of the three servers' mean waits for a CPU per run (µs). */
  const worstWait = (o: RunOutcome) =>
    Math.max(...NET.map((n) => o.waitPerRunUs?.[n] ?? Number.NaN));
  /** Mean over the three partitions of CPU per reply (µs): cgroup CPU ÷ replies, measured window. */
  const perReply = (o: RunOutcome) =>
    NET.reduce((s, n) => s + (o.cpuPerReplyUs?.[n] ?? Number.NaN), 0) / NET.length;
  const worstP99 = (o: RunOutcome) => Math.max(...NET.map((n) => o.p99Ms[n] ?? Number.NaN));
  /** The worst partition's p99 ratio from every repetition's requests pooled (null: no histograms). */
  const pooled = (xs: RunOutcome[], ref: "ref-udp" | "ref-tcp") =>
    pooledWorstRatio(xs, of(ref), NET);
  const POOLED_NAME = (who: string, load: string) =>
    `${who}, ${load}: worst partition p99 with hog ÷ without, every repetition's requests pooled (range: one repetition left out in turn)`;
  const col = (xs: RunOutcome[], f: (o: RunOutcome) => number, digits = 1, scale = 1) =>
    fmtStats(xs.map(f), digits, scale);
  const med = (xs: RunOutcome[], f: (o: RunOutcome) => number) =>
    stats(xs.map(f))?.median ?? Number.NaN;
  const policies = CONSERVATION_POLICIES as readonly string[];

  /** One conserve-table row; the cells a reference row fills by hand are given as text. */
  const conserveRow = (
    label: string,
    xs: RunOutcome[],
    fixed: { hogCores?: string; ratio?: string; capped?: string } = {},
  ) => [
    label,
    col(xs, (o) => o.hostIdle, 1, 100),
    fixed.hogCores ?? col(xs, (o) => o.hogCores, 2),
    col(xs, minServed, 1, 100),
    ...NET.map((n) => col(xs, (o) => o.p99Ms[n] ?? Number.NaN, 1)),
    fixed.ratio ?? col(xs, (o) => worstRatio(o, "ref-udp"), 2),
    fixed.capped ?? col(xs, (o) => o.hogCappedFraction, 0, 100),
    col(xs, (o) => o.netDelay, 1, 100),
    col(xs, worstWait, 0),
    col(xs, perReply, 0),
    col(xs, (o) => o.writesPerPartitionSec, 2),
  ];
  const conserveRows = policies.map((p) => conserveRow(POLICY_LABEL(p), of("conserve", p)));
  conserveRows.push(
    conserveRow("reference: plain CFS, hog stopped", of("ref-udp"), {
      hogCores: "0 (stopped)",
      ratio: "1",
      capped: "–",
    }),
  );
  const isoUdp = of("isolated-udp");
  if (isoUdp.length > 0)
    conserveRows.push(
      conserveRow(
        "reference: static weights, hog on CPU 0, the servers on CPU 1 (cpuset split by hand)",
        isoUdp,
        { capped: "–" },
      ),
    );
  const capUdp = of("hogcap-udp");
  if (capUdp.length > 0)
    conserveRows.push(conserveRow(HOGCAP_LABEL, capUdp, { capped: "100 (by hand)" }));
  const idleRows = policies.map((p) => {
    const xs = of("idle", p);
    return [
      POLICY_LABEL(p),
      col(xs, (o) => o.hogCores, 2),
      col(xs, (o) => o.hogCores / ((2000 - RESERVE_CPU_MILLIS) / 1000), 1, 100),
      col(xs, (o) => o.hostIdle, 1, 100),
      col(xs, hogShareOfLeftover, 1, 100),
      col(xs, (o) => o.selfCores, 2),
      col(xs, (o) => o.otherCores, 2),
      col(xs, (o) => o.hogCappedFraction, 0, 100),
    ];
  });
  const tcpRows = policies.map((p) => {
    const xs = of("tcp", p);
    return [
      POLICY_LABEL(p),
      col(xs, (o) => NET.reduce((s, n) => s + (o.rps?.[n] ?? Number.NaN), 0), 0),
      col(xs, minServed, 1, 100),
      ...NET.map((n) => col(xs, (o) => o.p99Ms[n] ?? Number.NaN, 1)),
      col(xs, (o) => worstRatio(o, "ref-tcp"), 2),
      col(xs, (o) => o.hogCores, 2),
      col(xs, (o) => o.hostIdle, 1, 100),
      col(xs, (o) => o.netDelay, 1, 100),
      col(xs, worstWait, 0),
      col(xs, perReply, 0),
    ];
  });
  const refTcp = of("ref-tcp");
  tcpRows.push([
    "reference: plain CFS, hog stopped",
    col(refTcp, (o) => NET.reduce((s, n) => s + (o.rps?.[n] ?? Number.NaN), 0), 0),
    col(refTcp, minServed, 1, 100),
    ...NET.map((n) => col(refTcp, (o) => o.p99Ms[n] ?? Number.NaN, 1)),
    "1",
    "0 (stopped)",
    col(refTcp, (o) => o.hostIdle, 1, 100),
    col(refTcp, (o) => o.netDelay, 1, 100),
    col(refTcp, worstWait, 0),
    col(refTcp, perReply, 0),
  ]);
  const isoTcp = of("isolated-tcp");
  if (isoTcp.length > 0)
    tcpRows.push([
      "reference: static weights, hog on CPU 0, the servers on CPU 1 (cpuset split by hand)",
      col(isoTcp, (o) => NET.reduce((s, n) => s + (o.rps?.[n] ?? Number.NaN), 0), 0),
      col(isoTcp, minServed, 1, 100),
      ...NET.map((n) => col(isoTcp, (o) => o.p99Ms[n] ?? Number.NaN, 1)),
      col(isoTcp, (o) => worstRatio(o, "ref-tcp"), 2),
      col(isoTcp, (o) => o.hogCores, 2),
      col(isoTcp, (o) => o.hostIdle, 1, 100),
      col(isoTcp, (o) => o.netDelay, 1, 100),
      col(isoTcp, worstWait, 0),
      col(isoTcp, perReply, 0),
    ]);
  const goalA = (o: RunOutcome, goal: number) => {
    const s = o.perSecond?.a ?? [];
    return s.length > 0 ? s.filter((x) => x >= goal).length / s.length : Number.NaN;
  };
  // Goals are per-second packet counts; recover them from the overload spec via the notes' sizing.
  const goalPps = (name: "a" | "b") =>
    Math.max(20, Math.round((OVERLOAD[name].goalCores as number) * info.ppsPerCore));
  const meanOf = (xs: number[]) =>
    xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : Number.NaN;
  const goalServed = (o: RunOutcome) =>
    (Math.min(meanOf(o.perSecond?.a ?? []), goalPps("a")) +
      Math.min(meanOf(o.perSecond?.b ?? []), goalPps("b"))) /
    (goalPps("a") + goalPps("b"));
  const overloadRows = (OVERLOAD_POLICIES as readonly string[]).map((p) => {
    const xs = of("overload", p);
    return [
      POLICY_LABEL(p),
      col(xs, (o) => goalA(o, goalPps("a")), 0, 100),
      col(xs, (o) => overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")), 0, 100),
      col(xs, (o) => meanOf(o.perSecond?.a ?? []), 0),
      col(xs, (o) => meanOf(o.perSecond?.b ?? []), 0),
      col(xs, (o) => meanOf(o.perSecond?.c ?? []), 0),
      col(xs, goalServed, 1, 100),
      col(xs, (o) => NET.reduce((s, n) => s + meanOf(o.perSecond?.[n] ?? []), 0), 0),
      col(xs, (o) => o.p99Ms.a ?? Number.NaN, 1),
      col(xs, (o) => o.hogCores, 2),
    ];
  });

  const w = {
    idle: med(of("conserve", "weir"), (o) => o.hostIdle),
    batch: med(of("idle", "weir"), (o) => o.hogCores / ((2000 - RESERVE_CPU_MILLIS) / 1000)),
    udpServed: med(of("conserve", "weir"), minServed),
    tcpServed: med(of("tcp", "weir"), minServed),
    writes: med(of("conserve", "weir"), (o) => o.writesPerPartitionSec),
    cyclesMet: med(of("overload", "weir"), (o) =>
      overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")),
    ),
    reaction: stats(of("step", "weir").map((o) => o.reaction?.ms ?? Number.NaN)),
  };
  /** Median, range and reps of one measure over the runs: what the budget table prints. */
  const rep = (xs: RunOutcome[], f: (o: RunOutcome) => number, digits = 1, scale = 1) =>
    repeated(xs.map(f), digits, scale);
  /** The latency target's figure: the worst partition's median ratio over the repetitions. */
  const partitionFigure = (
    name: string,
    p: PartitionRatio | null,
    target: boolean,
  ): BenchFigure[] =>
    p === null
      ? []
      : [
          {
            name,
            value: Math.round(p.median * 100) / 100,
            reps: p.n,
            range: [Math.round(p.min * 100) / 100, Math.round(p.max * 100) / 100],
            unit: "x",
            ...(target ? { target: "<= 1.2", meets: p.median <= 1.2 } : {}),
          },
        ];
  const PARTITION_NAME = (who: string, load: string) =>
    `${who}, ${load}: p99 with hog ÷ without, each partition's median over repetitions, the worst partition's (range: its repetitions)`;
  const PER_REP_NAME = (who: string, load: string) =>
    `${who}, ${load}: worst partition of each repetition, p99 with hog ÷ without (median; reads above 1 on noise alone: see the reference against itself)`;
  /** A second no-hog run against the first, both statistics: what each reads with no hog at all. */
  const aaFigures = (load: "UDP" | "TCP"): BenchFigure[] => {
    const [second, first] =
      load === "UDP" ? (["ref-udp-2", "ref-udp"] as const) : (["ref-tcp-2", "ref-tcp"] as const);
    const xs = of(second);
    if (xs.length === 0) return [];
    return [
      ...partitionFigure(
        `reference against itself, ${load}: the second no-hog run's p99 ÷ the first's, each partition's median over repetitions, the worst partition's`,
        perPartition(xs, first),
        false,
      ),
      {
        name: `reference against itself, ${load}: the second no-hog run's p99 ÷ the first's, worst partition of each repetition (median)`,
        ...rep(xs, (o) => worstRatio(o, first), 2),
        unit: "x",
      },
    ];
  };
  /** weir without placement beside weir: the same verdicts, where its runs are in this report. */
  const unplacedFigures = (): BenchFigure[] => {
    const P = WEIR_UNPLACED.name;
    const L = "weir without placement";
    if (of("conserve", P).length === 0) return [];
    const m = {
      idle: med(of("conserve", P), (o) => o.hostIdle),
      batch: med(of("idle", P), (o) => o.hogCores / ((2000 - RESERVE_CPU_MILLIS) / 1000)),
    };
    return [
      {
        name: `${L}, conserve: host idle (median)`,
        ...rep(of("conserve", P), (o) => o.hostIdle, 1, 100),
        unit: "%",
        target: "<= 5 %",
        meets: m.idle <= 0.05,
      },
      {
        name: `${L}, idle: hog CPU ÷ managed CPUs (median)`,
        ...rep(of("idle", P), (o) => o.hogCores / ((2000 - RESERVE_CPU_MILLIS) / 1000), 1, 100),
        unit: "%",
        target: ">= 95 %",
        meets: m.batch >= 0.95,
      },
      ...(
        [
          ["UDP", "conserve", "ref-udp"],
          ["TCP", "tcp", "ref-tcp"],
        ] as const
      ).flatMap(([load, scenario, ref]): BenchFigure[] => [
        ...partitionFigure(PARTITION_NAME(L, load), perPartition(of(scenario, P), ref), true),
        {
          name: PER_REP_NAME(L, load),
          ...rep(of(scenario, P), (o) => worstRatio(o, ref), 2),
          unit: "x",
        },
        ...pooledFigure(POOLED_NAME(L, load), pooled(of(scenario, P), ref), true),
        {
          name: `${L}, ${load}: worst partition served ÷ offered (median)`,
          ...rep(of(scenario, P), minServed, 1, 100),
          unit: "%",
          target: ">= 99 %",
          meets: med(of(scenario, P), minServed) >= 0.99,
        },
      ]),
      {
        // goals on average (the default): the ≥ 99 % of cycles is asked of policy.goalCycles
        name: `${L}, overload: cycles importance-1 partition meets its goal (manager's record, median)`,
        ...rep(
          of("overload", P),
          (o) => overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")),
          1,
          100,
        ),
        unit: "%",
      },
    ];
  };
  const figures: BenchFigure[] = [
    {
      name: "weir, conserve: host idle (median)",
      ...rep(of("conserve", "weir"), (o) => o.hostIdle, 1, 100),
      unit: "%",
      target: "<= 5 %",
      meets: w.idle <= 0.05,
    },
    {
      name: "weir, idle: hog CPU ÷ managed CPUs (median)",
      ...rep(of("idle", "weir"), (o) => o.hogCores / ((2000 - RESERVE_CPU_MILLIS) / 1000), 1, 100),
      unit: "%",
      target: ">= 95 %",
      meets: w.batch >= 0.95,
    },
    {
      name: "weir, idle: hog CPU ÷ the CPU the rest of the machine left it, hog + idle (median)",
      ...rep(of("idle", "weir"), hogShareOfLeftover, 1, 100),
      unit: "%",
    },
    {
      name: "weir, idle: cores other work used meanwhile, besides the hog and this benchmark's process (median)",
      ...rep(of("idle", "weir"), (o) => o.otherCores, 2),
      unit: "cores",
    },
    ...partitionFigure(
      PARTITION_NAME("weir", "UDP"),
      perPartition(of("conserve", "weir"), "ref-udp"),
      true,
    ),
    {
      name: PER_REP_NAME("weir", "UDP"),
      ...rep(of("conserve", "weir"), (o) => worstRatio(o, "ref-udp"), 2),
      unit: "x",
    },
    ...aaFigures("UDP"),
    ...pooledFigure(POOLED_NAME("weir", "UDP"), pooled(of("conserve", "weir"), "ref-udp"), true),
    {
      name: "reference, UDP: p99 ratio with the hog on one CPU and the three servers on the other (cpuset split by hand, median)",
      ...rep(of("isolated-udp"), (o) => worstRatio(o, "ref-udp"), 2),
      unit: "x",
    },
    {
      name: "reference, UDP: p99 ratio under static weights with the hog hard-capped by hand at 1 of the 2 CPUs (median)",
      ...rep(of("hogcap-udp"), (o) => worstRatio(o, "ref-udp"), 2),
      unit: "x",
    },
    {
      name: "weir, UDP: worst partition served ÷ offered (median)",
      ...rep(of("conserve", "weir"), minServed, 1, 100),
      unit: "%",
      target: ">= 99 %",
      meets: w.udpServed >= 0.99,
    },
    ...partitionFigure(
      PARTITION_NAME("weir", "TCP"),
      perPartition(of("tcp", "weir"), "ref-tcp"),
      true,
    ),
    {
      name: PER_REP_NAME("weir", "TCP"),
      ...rep(of("tcp", "weir"), (o) => worstRatio(o, "ref-tcp"), 2),
      unit: "x",
    },
    ...aaFigures("TCP"),
    ...pooledFigure(POOLED_NAME("weir", "TCP"), pooled(of("tcp", "weir"), "ref-tcp"), true),
    {
      name: "reference, TCP: p99 ratio with the hog on one CPU and the three servers on the other (cpuset split by hand, median)",
      ...rep(of("isolated-tcp"), (o) => worstRatio(o, "ref-tcp"), 2),
      unit: "x",
    },
    {
      name: "weir, TCP: worst partition served ÷ offered (median)",
      ...rep(of("tcp", "weir"), minServed, 1, 100),
      unit: "%",
      target: ">= 99 %",
      meets: w.tcpServed >= 0.99,
    },
    ...unplacedFigures(),
    {
      name: "weir, conserve: cgroup writes per partition per second (median)",
      ...rep(of("conserve", "weir"), (o) => o.writesPerPartitionSec, 2),
      unit: "/s",
      target: "<= 1",
      meets: w.writes <= 1,
    },
    {
      name: "weir, overload: seconds importance-1 partition meets its goal (median)",
      ...rep(of("overload", "weir"), (o) => goalA(o, goalPps("a")), 1, 100),
      unit: "%",
    },
    {
      name: "weir, overload: cycles importance-1 partition meets its goal (manager's record, median)",
      ...rep(
        of("overload", "weir"),
        (o) => overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")),
        1,
        100,
      ),
      unit: "%",
      target: ">= 99 %",
      meets: w.cyclesMet >= 0.99,
    },
    {
      name: `${WEIR_GOAL_CYCLES.label}, overload: seconds importance-1 partition meets its goal (median)`,
      ...rep(of("overload", WEIR_GOAL_CYCLES.name), (o) => goalA(o, goalPps("a")), 1, 100),
      unit: "%",
    },
    {
      name: `${WEIR_GOAL_CYCLES.label}, overload: cycles importance-1 partition meets its goal (manager's record, median)`,
      ...rep(
        of("overload", WEIR_GOAL_CYCLES.name),
        (o) => overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")),
        1,
        100,
      ),
      unit: "%",
      target: ">= 99 %",
      meets:
        (med(of("overload", WEIR_GOAL_CYCLES.name), (o) =>
          overloadCycleMet(o.cycleServed?.a ?? [], goalPps("a")),
        ) ?? Number.NaN) >= 0.99,
    },
  ];
  if (w.reaction)
    figures.push({
      name: `weir, step: load step -> 90 % of new entitlement applied (${w.reaction.n} repetitions got there)`,
      value: Math.round(w.reaction.median),
      reps: w.reaction.n,
      range: [Math.round(w.reaction.min), Math.round(w.reaction.max)],
      unit: "ms",
      target: "<= 300 ms",
      meets: w.reaction.median <= 300,
    });
  const stepRuns = of("step", "weir");
  const stepNote = `step (weir): a's entitlement before -> after the step and the reaction, per repetition: ${stepRuns.map((o) => (o.reaction ? `${Math.round(o.reaction.fromMillis)}m -> ${Math.round(o.reaction.toMillis)}m, ${o.reaction.ms === null ? (o.reaction.toMillis - o.reaction.fromMillis < 50 ? "no rise to measure" : "90 % never reached") : `${Math.round(o.reaction.ms)} ms`}` : "no records")).join("; ")}.`;

  const capReasons = (xs: RunOutcome[]) => {
    const all: Record<string, number> = {};
    for (const o of xs)
      for (const [k, v] of Object.entries(o.hogCapReasons)) all[k] = (all[k] ?? 0) + v;
    const e = Object.entries(all);
    return e.length ? e.map(([k, v]) => `${k} ${v} cycles`).join(", ") : "none";
  };
  // What the p99 ratio is made of: the servers' wait for a CPU per run with and without the hog.
  const waitNote = (label: string, scenario: ScenarioName, ref: ScenarioName) =>
    `${label}: a server's wait for a CPU per run (worst of the three, median) is ${med(of(ref), worstWait).toFixed(0)} µs with the hog stopped, ${med(of(scenario, "weir"), worstWait).toFixed(0)} µs beside the hog under weir and ${med(of(scenario, "static-weights"), worstWait).toFixed(0)} µs under static weights, which put the hog in the kernel's idle class and never write again.`;
  const waitNotes = of("ref-udp").some((o) => o.waitPerRunUs)
    ? [waitNote("UDP p99", "conserve", "ref-udp"), waitNote("TCP p99", "tcp", "ref-tcp")]
    : [];
  const capNote = hogCapNote(of("hogcap-udp"), of("conserve", "static-weights"), (o) =>
    worstRatio(o, "ref-udp"),
  );
  if (capNote) waitNotes.push(capNote);
  for (const [label, s, ref] of [
    ["UDP", "conserve", "ref-udp"],
    ["TCP", "tcp", "ref-tcp"],
  ] as const) {
    const n = traceNote(label, of, s, ref);
    if (n) waitNotes.push(n);
  }
  const blocked = blockedNote(outcomes);
  if (blocked) waitNotes.push(blocked);
  const waitRows = (["conserve", "tcp"] as const).flatMap((s) => {
    const kind = s === "conserve" ? "UDP" : "TCP";
    const rows = policies.map((p) => waitRow(`${kind}: ${POLICY_LABEL(p)}`, of(s, p)));
    rows.push(
      waitRow(`${kind}: reference, hog stopped`, of(s === "conserve" ? "ref-udp" : "ref-tcp")),
    );
    const iso = of(s === "conserve" ? "isolated-udp" : "isolated-tcp");
    if (iso.length) rows.push(waitRow(`${kind}: reference, cpuset split by hand`, iso));
    const capped = s === "conserve" ? of("hogcap-udp") : [];
    if (capped.length) rows.push(waitRow(`${kind}: reference, hog capped by hand`, capped));
    return rows;
  });
  // The p99s of every repetition's requests pooled, per policy (conservation-pooled.ts).
  // `reference`: the no-hog runs' own row (their pooled p99s; the ratio 1 by definition)
  const pooledRow = (label: string, udp: RunOutcome[], tcp: RunOutcome[], reference = false) => {
    const u = pooled(udp, "ref-udp");
    const t = pooled(tcp, "ref-tcp");
    const ms = (p: PooledRatio | null, n: string) => {
      const x = p?.perPartition[n];
      return p ? ((reference ? x?.withoutMs : x?.withMs) ?? Number.NaN).toFixed(1) : "–";
    };
    return [
      label,
      ...NET.map((n) => ms(u, n)),
      reference ? "1" : fmtPooled(u),
      ...NET.map((n) => ms(t, n)),
      reference ? "1" : fmtPooled(t),
    ];
  };
  const pooledRows = outcomes.some((o) => o.latencyB64)
    ? [
        ...policies.map((p) => pooledRow(POLICY_LABEL(p), of("conserve", p), of("tcp", p))),
        pooledRow("reference: plain CFS, hog stopped", of("ref-udp"), of("ref-tcp"), true),
        ...(of("isolated-udp").length > 0 || of("isolated-tcp").length > 0
          ? [
              pooledRow(
                "reference: static weights, hog on CPU 0, the servers on CPU 1 (cpuset split by hand)",
                of("isolated-udp"),
                of("isolated-tcp"),
              ),
            ]
          : []),
      ]
    : [];
  // Where weir loses: every scenario where a baseline's median beats weir's on p99 or batch CPU,
  // or its p99 ratio (pooled, or each partition's median) is lower than weir's by over 0.05,
  // whether or not weir's meets the target.
  const losses: string[] = [];
  const weirEvidence = (xs: RunOutcome[]) =>
    [
      `weir's measured state in those runs: hog hard-capped in ${fmtStats(
        xs.map((o) => o.hogCappedFraction),
        0,
        100,
      )} % of cycles`,
      `(reasons, cycles over all runs: ${capReasons(xs)}; median cap ${fmtStats(
        xs.map((o) => o.hogCapMillis),
        0,
      )} millicores),`,
      `network partitions' CPU delay ${fmtStats(
        xs.map((o) => o.netDelay),
        1,
        100,
      )} % (weir's cpuDelayThreshold: ${defaultPolicyKnobs(2000 - RESERVE_CPU_MILLIS).cpuDelayThreshold * 100} %)`,
      `and throttled ${fmtStats(
        xs.map((o) => o.netThrottled),
        1,
        100,
      )} % of periods, host idle ${fmtStats(
        xs.map((o) => o.hostIdle),
        1,
        100,
      )} %`,
    ].join(" ");
  const goalEvidence = (xs: RunOutcome[]) =>
    overloadGoalEvidence(
      med(xs, (o) => meanOf(o.perSecond?.a ?? [])),
      goalPps("a"),
      OVERLOAD.a.offeredCores * info.ppsPerCore,
      med(xs, (o) => meanOf(o.perSecond?.b ?? []) + meanOf(o.perSecond?.c ?? [])),
    );
  /**
   * A baseline's side of a p99 win beside weir's, measured in the same runs: the host it left
   * idle, the CPU it gave the hog, and how long the servers waited for a CPU (the scheduler
   * trace, where the run had one). A lower p99 bought with an idle host or a starved hog says so
   * here; one at the same idle and hog CPU is the servers' waits.
   */
  const tradeOff = (ox: RunOutcome[], wx: RunOutcome[]) => {
    const idle = (xs: RunOutcome[]) => (med(xs, (o) => o.hostIdle) * 100).toFixed(1);
    const hog = (xs: RunOutcome[]) => med(xs, (o) => o.hogCores).toFixed(2);
    const traced = (xs: RunOutcome[]) => xs.filter((o) => o.schedWait != null);
    const wait = (xs: RunOutcome[]) => med(traced(xs), (o) => o.schedWait!.waitMsPerSec);
    const ow = wait(ox);
    const ww = wait(wx);
    const waits =
      Number.isFinite(ow) && Number.isFinite(ww)
        ? `, the servers waiting for a CPU ${ow.toFixed(1)} against ${ww.toFixed(1)} ms a second`
        : "";
    return ` — with the host ${idle(ox)} % idle against weir's ${idle(wx)} %, the hog at ${hog(ox)} against ${hog(wx)} cores${waits}`;
  };
  const sc: Array<{
    s: ScenarioName;
    p99: (o: RunOutcome) => number;
    label: string;
    ref?: "ref-udp" | "ref-tcp";
  }> = [
    { s: "conserve", p99: worstP99, label: "conserve (UDP + hog)", ref: "ref-udp" },
    { s: "tcp", p99: worstP99, label: "tcp (closed loop + hog)", ref: "ref-tcp" },
    {
      s: "overload",
      p99: (o) => o.p99Ms.a ?? Number.NaN,
      label: "overload (p99 of importance-1 a)",
    },
    { s: "idle", p99: () => Number.NaN, label: "idle (no traffic)" },
  ];
  for (const { s, p99, label, ref } of sc) {
    const wx = of(s, "weir");
    const wp = med(wx, p99);
    // the ratios read two ways (every repetition's requests pooled; each partition's median)
    const wPooled = ref ? pooled(wx, ref) : null;
    const wPart = ref ? perPartition(wx, ref) : null;
    const wh = med(wx, (o) => o.hogCores);
    const items: string[] = [];
    for (const p of policies) {
      if (p === "weir") continue;
      const ox = of(s, p);
      const op = med(ox, p99);
      const oh = med(ox, (o) => o.hogCores);
      const wins: string[] = [];
      if (Number.isFinite(op) && op < 0.8 * wp && wp > 2)
        wins.push(`lower p99 (${op.toFixed(1)} vs ${wp.toFixed(1)} ms, medians)`);
      const oPooled = ref && wPooled ? pooled(ox, ref) : null;
      if (oPooled && wPooled && oPooled.value < wPooled.value - 0.05)
        wins.push(
          `lower p99 ratio with every repetition's requests pooled (${oPooled.value.toFixed(2)}× vs ${wPooled.value.toFixed(2)}×)`,
        );
      const oPart = ref && wPart ? perPartition(ox, ref) : null;
      if (oPart && wPart && oPart.median < wPart.median - 0.05)
        wins.push(
          `lower p99 ratio by each partition's median over repetitions (${oPart.median.toFixed(2)}× vs ${wPart.median.toFixed(2)}×; its worst partition ${oPart.partition}, weir's ${wPart.partition})`,
        );
      // a p99 win with what the baseline gave for it (more hog CPU is its own line)
      const p99Win = wins.length > 0;
      if (oh - wh > 0.05)
        wins.push(`more hog CPU (${oh.toFixed(2)} vs ${wh.toFixed(2)} cores, medians)`);
      if (wins.length)
        items.push(`${POLICY_LABEL(p)}: ${wins.join("; ")}${p99Win ? tradeOff(ox, wx) : ""}`);
    }
    if (items.length)
      losses.push(
        `Where weir loses — ${label}: ${items.join(". ")}. ${weirEvidence(wx)}.${s === "overload" ? ` ${goalEvidence(wx)}` : ""}`,
      );
  }
  if (losses.length === 0)
    losses.push(
      "Where weir loses: in these runs no baseline's median beat weir's on p99 or hog CPU in any scenario.",
    );

  const med3 = "median [min–max] over repetitions";
  return {
    name: "conservation-real",
    figures,
    tables: [
      {
        title: `conserve — UDP well below capacity + a runnable 2-thread hog (${med3})`,
        columns: [
          "policy",
          "host idle %",
          "hog CPU (cores)",
          "worst served %",
          "p99 a ms",
          "p99 b ms",
          "p99 c ms",
          "worst p99 ÷ no-hog",
          "hog capped % cycles",
          "net CPU delay %",
          "server wait per run µs (worst)",
          "CPU per reply µs (mean of a, b, c)",
          "writes /partition/s",
        ],
        rows: conserveRows,
      },
      {
        title: `idle — no traffic, manager running: the hog alone (${med3})`,
        columns: [
          "policy",
          "hog CPU (cores)",
          "hog ÷ managed CPUs %",
          "host idle %",
          "hog ÷ (hog + idle) %",
          "this process (manager + generator) cores",
          "other work cores",
          "hog capped % cycles",
        ],
        rows: idleRows,
      },
      {
        title: `tcp — closed loop, ${TCP_CONNECTIONS} connections per partition with think time, + the hog (${med3})`,
        columns: [
          "policy",
          "replies/s (3 partitions)",
          "worst served %",
          "p99 a ms",
          "p99 b ms",
          "p99 c ms",
          "worst p99 ÷ no-hog",
          "hog CPU (cores)",
          "host idle %",
          "net CPU delay %",
          "server wait per run µs (worst)",
          "CPU per reply µs (mean of a, b, c)",
        ],
        rows: tcpRows,
      },
      ...(pooledRows.length > 0
        ? [
            {
              title: `p99 of every repetition's requests pooled (${info.reps} repetitions, measured windows): conserve (UDP) and tcp beside the hog; the ratio is the worst partition's pooled p99 ÷ its pooled p99 with the hog stopped in the same repetitions, [range with one repetition left out in turn]`,
              columns: [
                "policy",
                "UDP p99 a ms",
                "UDP p99 b ms",
                "UDP p99 c ms",
                "UDP worst p99 ÷ no-hog",
                "TCP p99 a ms",
                "TCP p99 b ms",
                "TCP p99 c ms",
                "TCP worst p99 ÷ no-hog",
              ],
              rows: pooledRows,
            },
          ]
        : []),
      ...(waitRows.some((r) => Number(r[1]) > 0)
        ? [
            {
              title: `where the servers waited for a CPU — the kernel's scheduler events over 2 s of each measured run (conserve and tcp, ${med3})`,
              columns: ["policy", ...WAIT_COLUMNS],
              rows: waitRows,
            },
          ]
        : []),
      {
        title: `overload — demand above the host; a (importance 1) has a goal it reaches alone (${med3})`,
        columns: [
          "policy",
          "seconds a meets goal %",
          "cycles a meets goal %",
          "a served/s",
          "b served/s",
          "c served/s",
          "goal traffic served %",
          "total served/s",
          "p99 a ms",
          "hog CPU (cores)",
        ],
        rows: overloadRows,
      },
    ],
    notes: [
      ...info.notes,
      ...placementNote(outcomes),
      ...stallNotes(outcomes),
      stepNote,
      ...waitNotes,
      ...losses,
    ],
  };
}

/**
 * What weir's placement was in these runs: the config's default (`auto`) decides at start
 * whether it places here, and says why; one note per distinct answer, with how many of weir's
 * runs gave it (none: outcomes that do not say).
 */
export function placementNote(outcomes: readonly RunOutcome[]): string[] {
  const seen = new Map<string, number>();
  for (const o of outcomes) {
    if (o.policy !== "weir" || !o.placement) continue;
    const d = o.placement;
    const key = d.why ?? `placement.mode ${d.mode}: ${d.inForce ? "in force" : "not in force"}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].map(
    ([key, n]) =>
      `weir's placement (config \`placement.mode\`: the default, \`auto\`, unless a row says otherwise), as its log said at start in ${n} run${n === 1 ? "" : "s"}: ${key}.`,
  );
}

const fmtMs = (ms: number) => `${ms.toFixed(1)} ms`;
const fmtGuestWide = (s: { guestWideMs: number[] }) =>
  s.guestWideMs.length === 0
    ? "no guest-wide stall"
    : `guest-wide stall${s.guestWideMs.length === 1 ? "" : "s"} of ${s.guestWideMs.map((x) => x.toFixed(1)).join(", ")} ms`;

/**
 * What the stall probe (stall-probe.ts) saw over the measured windows: how late its real-time
 * threads woke, and in how many runs every CPU was late at once (the guest stood still); then,
 * for each of weir's repetitions whose worst p99 ratio missed the 1.2× target (UDP conserve,
 * TCP), what the probe saw in that run and in the same repetition's no-hog reference — whether
 * the machine stood still where the p99 rose. Nothing for outcomes that carry no probe field.
 */
export function stallNotes(outcomes: readonly RunOutcome[]): string[] {
  const withField = outcomes.filter((o) => o.stalls !== undefined);
  if (withField.length === 0) return [];
  const probed = withField.filter((o) => o.stalls != null);
  if (probed.length === 0) {
    const error = withField.find((o) => o.stallsError)?.stallsError;
    return [
      error
        ? `No stall probe: cyclictest failed (${error}).`
        : "No stall probe: cyclictest (Debian: `apt-get install rt-tests`) is not installed.",
    ];
  }
  const stallsOf = (o: RunOutcome) => o.stalls as NonNullable<RunOutcome["stalls"]>;
  const stalled = probed.filter((o) => stallsOf(o).guestWideMs.length > 0);
  const longest = Math.max(0, ...probed.flatMap((o) => stallsOf(o).guestWideMs));
  const notes = [
    `The machine's own stalls (stall-probe.ts: rt-tests' cyclictest, a SCHED_FIFO thread on each CPU waking every ${PROBE_INTERVAL_US / 1000} ms over each measured window, which preempts everything the benchmark runs): its latest wake-up per run ${fmtStats(
      probed.map((o) => stallsOf(o).maxLateMs),
      1,
    )} ms over ${probed.length} runs; every CPU more than ${SPIKE_US / 1000} ms late at once (the guest stood still) in ${stalled.length} of them${stalled.length > 0 ? `, the longest ${fmtMs(longest)}` : ""}.`,
  ];
  const loads = [
    { scenario: "conserve", ref: "ref-udp", load: "UDP" },
    { scenario: "tcp", ref: "ref-tcp", load: "TCP" },
  ] as const;
  for (const { scenario, ref, load } of loads)
    for (const o of outcomes.filter((x) => x.scenario === scenario && x.policy === "weir")) {
      const r = outcomes.find((x) => x.scenario === ref && x.rep === o.rep);
      if (!r) continue;
      let worst = { name: "", ratio: Number.NEGATIVE_INFINITY };
      for (const n of NET) {
        const ratio = (o.p99Ms[n] ?? Number.NaN) / (r.p99Ms[n] ?? Number.NaN);
        if (ratio > worst.ratio) worst = { name: n, ratio };
      }
      if (!(worst.ratio > 1.2) || !o.stalls || !r.stalls) continue;
      notes.push(
        `${load}, repetition ${o.rep + 1}: weir's p99 ${worst.ratio.toFixed(2)}× the reference's (partition ${worst.name}, ${fmtMs(o.p99Ms[worst.name]!)} against ${fmtMs(r.p99Ms[worst.name]!)}); the stall probe's latest wake-up ${fmtMs(o.stalls.maxLateMs)} in weir's run (${fmtGuestWide(o.stalls)}) and ${fmtMs(r.stalls.maxLateMs)} in the reference's (${fmtGuestWide(r.stalls)}).`,
      );
    }
  return notes;
}
