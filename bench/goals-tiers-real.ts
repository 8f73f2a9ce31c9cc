// Goals across importance levels on the real testbed. Three partitions (netns + veth + cgroup
// v1, one SHA-256 packet server each, closed-loop TCP), all three servers pinned to one CPU:
// a (importance 1) and b (importance 2) each have a goal of half of what a serves alone, c
// (importance 3) has none. Phase 1, "overloaded": all three saturated — both goals together
// need more than the CPU, so importance 1 must meet its goal, importance 2 must get what is
// left, and importance 3 next to nothing. Phase 2, "a's load falls": a's clients think between
// requests, so a offers about a quarter of its solo rate; b's goal can now be met, and the
// surplus must reach c within 1 s (WLM: a donor gives to the levels below once the more
// important goals are met).
//
// Rates are the client's replies/s over the last 3 s of each phase. Goals are in packets/s as
// weir's sensor counts them (host veth rx); a's solo run gives packets per reply. The reaction
// is read from c's host veth rx counter sampled every 100 ms by this process (the same for
// every policy): from the moment a's load falls to the first 300 ms whose rate is at least
// 90 % of c's rate over phase 2's last 3 s.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench goals-tiers-real [--quick] [--reps N]
//  or: npx tsx bench/goals-tiers-real.ts [--json] [--quick] [--reps N]
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord, Importance, PartitionSpec } from "../src/core/model.ts";
import type { Manager } from "../src/manager/manager.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import type { TestbedState } from "../src/testbed/state.ts";
import { runTcpLoad, type TcpLoadResult } from "../src/testbed/tcp-load.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  CONNECTIONS,
  GENERATOR_CPU,
  leftovers,
  makeManager,
  measureTcp,
  readCounter,
  SERVER_CPU,
} from "./goals-run.ts";
import type { BenchFigure, Benchmark, BenchResult } from "./harness.ts";
import {
  fmtStats,
  isMain,
  isolateSelf,
  realBenchReps,
  repeated,
  runStandalone,
  stats,
} from "./harness.ts";
import {
  COST_ROUNDS,
  epochNow,
  GROUP_CPU_SHARES,
  loadAvg,
  pin,
  pinPartitions,
  RESERVE_CPU_MILLIS,
  rotate,
  sleep,
} from "./real-common.ts";

/** Each goal: this fraction of a's solo packets/s (a's and b's together: all of it). */
const GOAL_FRACTION = 0.5;
/** Phase 2: a's clients think so that it offers about this fraction of its solo rate. */
const FALLEN_FRACTION = 0.25;
const SAMPLE_MS = 100;
const MEASURE_TAIL_MS = 3000;
const REACHED_FRACTION = 0.9;

type PolicyRun = "weir" | "weir-1cpu" | "none" | "static-weights";
const POLICIES: readonly PolicyRun[] = ["weir", "weir-1cpu", "none", "static-weights"];
const LABEL: Record<PolicyRun, string> = {
  weir: "weir (capacity configured 1.7 CPUs, as the other real benchmarks; held to the reachable CPU)",
  "weir-1cpu": "weir (capacity 1 CPU: the pinned one)",
  none: "none (plain CFS)",
  "static-weights": "static weights (importance 1, 2, 3)",
};
const IMPORTANCE: Record<string, Importance> = { a: 1, b: 2, c: 3 };

interface Timing {
  phaseMs: number;
  soloMs: number;
}
const timingFor = (quick: boolean): Timing =>
  quick ? { phaseMs: 6000, soloMs: 4000 } : { phaseMs: 9000, soloMs: 6000 };

export interface TiersRun {
  policy: PolicyRun;
  rep: number;
  goalPacketsPerSec: number;
  /** a's solo replies/s and packets per reply (this repetition). */
  soloRps: number;
  packetsPerReply: number;
  /** replies/s over the last 3 s of each phase. */
  p1: Record<string, number>;
  p2: Record<string, number>;
  /** ms from a's load falling until c's 300 ms rate first reached 90 % of its phase-2 rate (null: never). */
  reactionMs: number | null;
  /** c's packets/s over phase 2's last 3 s (what "reached" is measured against). */
  cLevelPps: number;
  /** Phase 2: a's clients' think time between a reply and the next request. */
  thinkMs: number;
}

/** First time (ms after `fromMs`) that a 3-sample mean of `rate` reaches `level`, else null. */
export function reachedAfterMs(
  samples: ReadonlyArray<{ t: number; pps: number }>,
  fromMs: number,
  level: number,
): number | null {
  const after = samples.filter((s) => s.t > fromMs);
  for (let i = 2; i < after.length; i++) {
    const mean = (after[i]!.pps + after[i - 1]!.pps + after[i - 2]!.pps) / 3;
    if (mean >= level) return after[i]!.t - fromMs;
  }
  return null;
}

function specsFor(goalPacketsPerSec: number, capacity: number): PartitionSpec[] {
  return ["a", "b", "c"].map(
    (id): PartitionSpec => ({
      id,
      kind: "network",
      minCpuMillis: 0,
      maxCpuMillis: capacity,
      weight: 100,
      importance: IMPORTANCE[id]!,
      ...(id !== "c" ? { goalPacketsPerSec } : {}),
    }),
  );
}

export async function runTiers(
  tb: TestbedState,
  policy: PolicyRun,
  rep: number,
  solo: { rps: number; pps: number },
  timing: Timing,
  backend: ReturnType<typeof createActuatorBackend>,
  /** Every cycle's record (diagnostics). */
  onRecord?: (r: CycleRecord, fallAtMs: number) => void,
): Promise<TiersRun> {
  const capacity = policy === "weir-1cpu" ? 1000 : 2000 - RESERVE_CPU_MILLIS;
  const goalPacketsPerSec = Math.round(solo.pps * GOAL_FRACTION);
  const packetsPerReply = solo.pps / solo.rps;
  const part = (n: string) => tb.partitions.find((p) => p.name === n)!;
  const target = (n: string) => ({ name: n, addr: part(n).nsAddr, port: part(n).port });
  let fallAt = 0;
  let manager: Manager | null = null;
  let loop: Promise<unknown> | null = null;
  const ac = new AbortController();
  if (policy !== "none") {
    const name = policy === "weir-1cpu" ? "weir" : policy;
    manager = makeManager(tb, name, specsFor(goalPacketsPerSec, capacity), capacity, backend);
    if (onRecord) manager.subscribe((r) => onRecord(r, fallAt));
    loop = manager.start(ac.signal);
  }
  // c's served packets, sampled here for every policy.
  const cIf = part("c").hostIf;
  const samples: Array<{ t: number; pps: number }> = [];
  let last = { t: epochNow(), rx: readCounter(cIf, "rx_packets") };
  const sampler = setInterval(() => {
    const now = { t: epochNow(), rx: readCounter(cIf, "rx_packets") };
    samples.push({ t: now.t, pps: ((now.rx - last.rx) * 1000) / Math.max(1, now.t - last.t) });
    last = now;
  }, SAMPLE_MS);
  const tail = (ms: number) => [{ name: "tail", fromMs: ms - MEASURE_TAIL_MS, toMs: ms }];
  const bound = (targets: number, ms: number) => Math.ceil(targets * 20_000 * (ms / 1000));
  const thinkMs = Math.max(1, Math.round((CONNECTIONS * 1000) / (FALLEN_FRACTION * solo.rps)));
  let bc: TcpLoadResult;
  let a1: TcpLoadResult;
  let a2: TcpLoadResult;
  try {
    const bcRun = runTcpLoad({
      targets: [target("b"), target("c")],
      connections: CONNECTIONS,
      durationMs: 2 * timing.phaseMs,
      maxRequests: bound(2, 2 * timing.phaseMs),
      phases: [
        { name: "p1", fromMs: timing.phaseMs - MEASURE_TAIL_MS, toMs: timing.phaseMs },
        { name: "p2", fromMs: 2 * timing.phaseMs - MEASURE_TAIL_MS, toMs: 2 * timing.phaseMs },
      ],
    });
    a1 = await runTcpLoad({
      targets: [target("a")],
      connections: CONNECTIONS,
      durationMs: timing.phaseMs,
      maxRequests: bound(1, timing.phaseMs),
      phases: tail(timing.phaseMs),
    });
    fallAt = epochNow();
    a2 = await runTcpLoad({
      targets: [target("a")],
      connections: CONNECTIONS,
      thinkMs,
      durationMs: timing.phaseMs,
      maxRequests: bound(1, timing.phaseMs),
      phases: tail(timing.phaseMs),
    });
    bc = await bcRun;
  } finally {
    clearInterval(sampler);
    ac.abort();
    if (loop) await loop;
    manager?.shutdown("restore");
  }
  const rps = (r: TcpLoadResult, name: string, phase: string) =>
    r.targets.find((t) => t.name === name)?.phases.find((p) => p.name === phase)?.requestsPerSec ??
    Number.NaN;
  const endAt = fallAt + timing.phaseMs;
  const level =
    stats(samples.filter((s) => s.t >= endAt - MEASURE_TAIL_MS).map((s) => s.pps))?.median ??
    Number.NaN;
  return {
    policy,
    rep,
    goalPacketsPerSec,
    soloRps: solo.rps,
    packetsPerReply,
    p1: { a: rps(a1, "a", "tail"), b: rps(bc, "b", "p1"), c: rps(bc, "c", "p1") },
    p2: { a: rps(a2, "a", "tail"), b: rps(bc, "b", "p2"), c: rps(bc, "c", "p2") },
    reactionMs: reachedAfterMs(samples, fallAt, REACHED_FRACTION * level),
    cLevelPps: level,
    thinkMs,
  };
}

export const bench: Benchmark = {
  name: "goals-tiers-real",
  description:
    "goals across importance levels on the real testbed: three closed-loop servers on one CPU, importance 1 and 2 with goals of half a solo rate each, importance 3 without; overloaded, then importance 1's load falls: who meets its goal, who gets what is left, and how fast the surplus reaches importance 3, for weir, plain CFS and static weights (root)",
  async run(ctx) {
    const reps = realBenchReps("goals-tiers-real", ctx);
    const timing = timingFor(ctx.quick);
    const runMs = 2 * timing.phaseMs;
    const totalMs = reps * (timing.soloMs + 1000 + POLICIES.length * runMs);
    const load0 = loadAvg();
    const started = Date.now();
    const prefix = `wt${process.pid % 100000}`;
    const tb = await testbedUp({
      prefix,
      partitions: [{ name: "a" }, { name: "b" }, { name: "c" }],
      costRounds: COST_ROUNDS,
      maxLifetimeMs: totalMs * 2 + 10 * 60_000,
      groupCpuShares: GROUP_CPU_SHARES,
    });
    const runs: TiersRun[] = [];
    let unisolate = () => {};
    let selfAffinity: string | null = null;
    try {
      unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
      for (const p of tb.partitions)
        if (!p.serverPid) throw new Error("goals-tiers-real: the testbed recorded no server pid");
      // every process in their cgroups, not only the servers' pids (pinPartitions says why)
      pinPartitions(tb.partitions, SERVER_CPU);
      selfAffinity = pin(process.pid, String(GENERATOR_CPU));
      const backend = createActuatorBackend("cgroup", {
        roots: defaultRoots,
        now: epochNow,
      });
      const others = tb.partitions.filter((p) => p.name !== "a").map((p) => p.serverPid!);
      let doneMs = 0;
      for (let rep = 0; rep < reps; rep++) {
        ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} a solo`);
        for (const pid of others) process.kill(pid, "SIGSTOP");
        let solo: Awaited<ReturnType<typeof measureTcp>>;
        try {
          solo = await measureTcp(tb, ["a"], { warmupMs: 1000, measureMs: timing.soloMs });
        } finally {
          for (const pid of others) process.kill(pid, "SIGCONT");
        }
        const s = { rps: solo.rate.a!.requestsPerSec, pps: solo.rate.a!.packetsPerSec };
        doneMs += timing.soloMs + 1000;
        await sleep(300);
        for (const policy of rotate(POLICIES, rep)) {
          ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} ${policy}`);
          runs.push(await runTiers(tb, policy, rep, s, timing, backend));
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
    return summariseTiers(runs, {
      notes: [
        `Setup: the three servers (${COST_ROUNDS} SHA-256 rounds per request) pinned to CPU ${SERVER_CPU} (every process in their cgroups, and weir's reachable CPUs checked to be that CPU before the first run); this process (closed-loop generator, ${CONNECTIONS} connections per server, and the manager) pinned to CPU ${GENERATOR_CPU} in its own cpu cgroup of cpu.shares ${GROUP_CPU_SHARES}. Per repetition: a alone (b and c SIGSTOPped by PID, no manager) for ${timing.soloMs / 1000} s; then each policy in turn (order rotated per repetition): phase 1 ${timing.phaseMs / 1000} s all saturated, phase 2 ${timing.phaseMs / 1000} s with a's clients thinking between requests (${CONNECTIONS} connections × 1000 ÷ (${FALLEN_FRACTION} × a's solo replies/s) ms: ${[...new Set(runs.map((x) => x.thinkMs))].join(", ")} ms; aimed at ${FALLEN_FRACTION * 100} % of its solo rate); rates over the last ${MEASURE_TAIL_MS / 1000} s of each phase. weir runs twice: with capacity ${2000 - RESERVE_CPU_MILLIS}m (2 CPUs minus ${RESERVE_CPU_MILLIS}m reserve, as in the other real benchmarks) and with 1,000m (the one CPU the servers can run on); static weights map importance to fixed cpu.weight.`,
        `Load average (1, 5, 15 min): ${load0} at the start, ${loadAvg()} at the end (2 CPUs, shared with other work). Wall time ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
        left.length === 0
          ? "After testbed down, none of its namespaces, veths, cgroups or processes was left (checked against ip netns, /sys/class/net, the cgroup trees and /proc)."
          : `LEFT BEHIND after testbed down (a defect): ${left.join(", ")}.`,
      ],
    });
  },
};

/** The figures and tables from every run. Goals are compared in replies: goal pps ÷ packets per reply. */
export function summariseTiers(
  runs: TiersRun[],
  info: { notes: string[] },
): Omit<BenchResult, "machine" | "date" | "command"> {
  const goalRps = (x: TiersRun) => x.goalPacketsPerSec / x.packetsPerReply;
  const m = (xs: number[]) => stats(xs)?.median ?? Number.NaN;
  const of = (p: PolicyRun) => runs.filter((x) => x.policy === p);
  const aP1 = (x: TiersRun) => x.p1.a! / goalRps(x);
  const bP1 = (x: TiersRun) => x.p1.b! / goalRps(x);
  const bShareP1 = (x: TiersRun) => x.p1.b! / (x.p1.b! + x.p1.c!);
  const bP2 = (x: TiersRun) => x.p2.b! / goalRps(x);
  const cP2 = (x: TiersRun) => x.p2.c! / x.soloRps;
  const w = of("weir");
  const reactions = w.map((x) => x.reactionMs ?? Number.NaN);
  const reached = reactions.filter((x) => Number.isFinite(x));
  const rs = stats(reached);
  const figures: BenchFigure[] = [
    {
      name: "weir, overloaded: importance 1 served ÷ its goal (median)",
      ...repeated(w.map(aP1), 2),
      unit: "x",
      target: ">= 1.0",
      meets: m(w.map(aP1)) >= 1,
    },
    {
      name: "weir, overloaded: importance 2's share of what importance 1 leaves, b ÷ (b + c) (median)",
      ...repeated(w.map(bShareP1), 1, 100),
      unit: "%",
      target: ">= 90 %",
      meets: m(w.map(bShareP1)) >= 0.9,
    },
    {
      name: "weir, a's load falls: importance 2 served ÷ its goal (median)",
      ...repeated(w.map(bP2), 2),
      unit: "x",
      target: ">= 1.0",
      meets: m(w.map(bP2)) >= 1,
    },
    {
      name: `weir, a's load falls: surplus reaches importance 3 (c at ${REACHED_FRACTION * 100} % of its new rate; ${reached.length} of ${w.length} repetitions got there)`,
      value: rs ? Math.round(rs.median) : Number.NaN,
      ...(rs
        ? { reps: rs.n, range: [Math.round(rs.min), Math.round(rs.max)] as [number, number] }
        : {}),
      unit: "ms",
      target: "<= 1000 ms",
      meets: rs !== null && reached.length === w.length && rs.median <= 1000,
    },
  ];
  const rows = POLICIES.map((p) => {
    const xs = of(p);
    return [
      LABEL[p],
      fmtStats(xs.map(aP1), 2),
      fmtStats(xs.map(bP1), 2),
      fmtStats(xs.map(bShareP1), 1, 100),
      fmtStats(
        xs.map((x) => x.p1.c! / x.soloRps),
        1,
        100,
      ),
      fmtStats(
        xs.map((x) => x.p2.a! / x.soloRps),
        1,
        100,
      ),
      fmtStats(xs.map(bP2), 2),
      fmtStats(xs.map(cP2), 1, 100),
      fmtStats(
        xs.map((x) => x.reactionMs ?? Number.NaN),
        0,
      ),
      `${xs.filter((x) => x.reactionMs !== null).length}/${xs.length}`,
    ];
  });
  return {
    name: "goals-tiers-real",
    figures,
    tables: [
      {
        title:
          "a (importance 1) and b (importance 2) with goals of half a's solo rate each, c (importance 3) without, all on one CPU (median [min–max] over repetitions)",
        columns: [
          "policy",
          "phase 1: a ÷ goal",
          "phase 1: b ÷ goal",
          "phase 1: b ÷ (b + c) %",
          "phase 1: c % of solo",
          "phase 2: a % of solo",
          "phase 2: b ÷ goal",
          "phase 2: c % of solo",
          "surplus reaches c, ms",
          "reached (runs)",
        ],
        rows,
      },
    ],
    notes: [
      `a's solo rate per repetition: ${runs
        .filter((x) => x.policy === "weir")
        .map(
          (x) =>
            `${Math.round(x.soloRps)} replies/s (${x.packetsPerReply.toFixed(2)} packets per reply)`,
        )
        .join(", ")}; goals (each of a and b) ${runs
        .filter((x) => x.policy === "weir")
        .map((x) => x.goalPacketsPerSec)
        .join(", ")} packets/s.`,
      "\"surplus reaches c\": from the moment a's load falls to the end of the first 300 ms (3 samples of c's host veth rx, 100 ms apart) whose mean rate is at least 90 % of c's median rate over phase 2's last 3 s; blank where c's rate never got there.",
      ...info.notes,
    ],
  };
}

if (isMain(import.meta.url)) await runStandalone(bench);
