// Does the weights-first law conserve work? weir and every baseline side by side on the real
// testbed (netns, veth, cgroup v1, one SHA-256 packet server per partition listening on UDP
// and TCP, a 2-thread batch hog), each through weir's real Manager, real sensors and the real
// cgroup actuator. Repetitions are interleaved: inside each repetition every scenario runs
// every policy in turn (the order rotates per repetition), so host drift and other work on a
// shared machine spread over all policies; every figure is the median and range over them.
//
// Scenarios (all loads sized from the CPU per packet measured by a probe at the start):
//   conserve    UDP well below capacity + the hog: host idle, hog CPU, served, p99
//   idle        no traffic, manager running: hog CPU ÷ managed CPUs
//   udp / tcp   p99 with the hog ÷ p99 of the same partition with the hog SIGSTOPped (plain
//               CFS, same repetition), served ÷ offered; tcp is closed-loop (runTcpLoad)
//   overload    3 partitions demanding more than the host; a (importance 1) has a goal it can
//               reach alone: share of seconds it meets it, goal traffic served
//   step        weir only: reaction from a load step to 90 % of the new entitlement applied
// One run and the cost probe: conservation-run.ts; the tables and figures: conservation-summary.ts;
// what the real benchmarks share: real-common.ts.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench conservation-real [--quick] [--reps N]
//  or: npx tsx bench/conservation-real.ts [--json] [--quick] [--reps N] [--scenarios step]
// `--scenarios step` runs the step scenario alone (the default is every scenario) and prints,
// per repetition, a's cycles from the step to the end of the run with the policy's `why`
// (stepTrace, real-common.ts) on stderr and in the notes.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord } from "../src/core/model.ts";
import { describeLlc, readLlc } from "../src/sensors/cpu-caches.ts";
import { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { cgroupProcs, pinCgroupMembers } from "../src/testbed/cgroups.ts";
import type { TestbedState } from "../src/testbed/state.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  CONSERVATION_POLICIES,
  CONSERVE_CORES,
  type Ctx,
  hogCapFiles,
  type LoadPlan,
  networkSpecs,
  OVERLOAD,
  OVERLOAD_POLICIES,
  REFERENCE_HOG_CAP,
  type RunOutcome,
  runOne,
  type ScenarioName,
  TCP_CONNECTIONS,
  TRACE_MS,
  timingFor,
} from "./conservation-run.ts";
import { summariseConservation } from "./conservation-summary.ts";
import type { Benchmark, BenchResult } from "./harness.ts";
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
  BASELINES_ON_THE_TESTBED_NOTE,
  COST_ROUNDS,
  epochNow,
  fmtStepDrift,
  fmtStepTrace,
  GROUP_CPU_SHARES,
  loadAvg,
  pin,
  RESERVE_CPU_MILLIS,
  rotate,
  stepDrift,
  stepTrace,
} from "./real-common.ts";
import { SchedTrace } from "./sched-trace.ts";
import { probeServer } from "./server-probe.ts";

const TCP_CORES = 0.15;

/** `--scenarios all|step` from argv: which scenarios to run (default all). */
export function parseScenariosOption(argv: string[]): "all" | "step" {
  const i = argv.indexOf("--scenarios");
  if (i < 0) return "all";
  const v = argv[i + 1];
  if (v === "all" || v === "step") return v;
  throw new Error(`--scenarios: "all" or "step", got ${JSON.stringify(v ?? null)}`);
}

/** CPU the isolation reference gives the hog, and the one it gives the network servers. */
const ISOLATED_HOG_CPU = "0";
const ISOLATED_NET_CPU = "1";

/**
 * The isolation reference (a cpuset policy, by hand): every thread of the hog on one CPU,
 * every thread of every process in the three partitions' cgroups on the other (taskset),
 * so the hog never runs where a server does. Returns the undo, which puts each PID back on
 * the CPUs it had.
 */
function isolateNetwork(tb: TestbedState): () => void {
  const undo: Array<[number, string]> = [];
  const hogPids = tb.hogs.flatMap((h) => cgroupProcs(h.cgroupDirs[0]!));
  for (const pid of hogPids) undo.push([pid, pin(pid, ISOLATED_HOG_CPU)]);
  // every process in the partitions' cgroups, not only the servers (pinCgroupMembers says why)
  for (const p of tb.partitions) undo.push(...pinCgroupMembers(p.cgroupDirs, ISOLATED_NET_CPU));
  return () => {
    for (const [pid, cpus] of undo) pin(pid, cpus);
  };
}

/** Every run's raw outcome, rewritten after each run (kept if the summary or the report fails). */
export const RUNS_FILE = path.join(os.tmpdir(), "weir-conservation-real-runs.json");
const saveRuns = (outcomes: RunOutcome[]) =>
  fs.writeFileSync(RUNS_FILE, `${JSON.stringify(outcomes)}\n`);

export const bench: Benchmark = {
  name: "conservation-real",
  description:
    "work conservation, batch when idle, latency protection (UDP and closed-loop TCP), overload with goals and weir's write rate and reaction, on the real testbed for weir and every baseline, interleaved repetitions, median [min–max] (root)",
  async run(ctx) {
    const reps = realBenchReps("conservation-real", ctx);
    const timing = timingFor(ctx.quick);
    const stepOnly = parseScenariosOption(process.argv.slice(2)) === "step";
    const runMs = timing.warmupMs + timing.measureMs;
    const overloadRunMs = timing.warmupMs + timing.overloadMeasureMs;
    const perRepMs = stepOnly
      ? runMs
      : CONSERVATION_POLICIES.length *
          (2 * runMs + overloadRunMs + timing.warmupMs + timing.idleMeasureMs) +
        8 * runMs + // the step and the references
        overloadRunMs; // the overload's goal-cycles row
    const totalMs = reps * perRepMs;
    const load0 = loadAvg();
    const started = Date.now();
    const prefix = `wc${process.pid % 100000}`;
    const tb = await testbedUp({
      prefix,
      partitions: ["a", "b", "c"].map((name) => ({ name })),
      hogs: [{ name: "hog", cpus: 2 }],
      costRounds: COST_ROUNDS,
      maxLifetimeMs: totalMs * 2 + 10 * 60_000,
      groupCpuShares: GROUP_CPU_SHARES,
    });
    const outcomes: RunOutcome[] = [];
    const notes: string[] = [];
    /** Per step run, a's cycles from the step to the end of the run (stepTrace). */
    const stepTraces: string[] = [];
    /** Per step run, a's cost per packet after the step against the last 1.5 s (the drift line). */
    const stepDrifts: string[] = [];
    let unisolate = () => {};
    const hostCpu = new HeldHostCpu(defaultRoots.procfs);
    let costNs = Number.NaN;
    let saturationPps = Number.NaN;
    let trace: SchedTrace | null = null;
    try {
      try {
        trace = new SchedTrace(`weir-${prefix}`);
      } catch (err) {
        notes.push(`No scheduler trace: tracefs instance not made (${(err as Error).message}).`);
      }
      // The generator (it stands for the partitions' remote clients) and the manager run in a
      // cgroup beside the partitions and the hog, inside the testbed's parent: the hog's idle
      // class ranks it below its siblings only, so outside the parent the generator waited
      // behind the hog's CPU time like no remote client would, and every policy's p99 with the
      // hog counted the client's wait as the server's.
      unisolate = isolateSelf(`${prefix}/gen`, GROUP_CPU_SHARES);
      const capacity = 2000 - RESERVE_CPU_MILLIS;
      const c: Ctx = {
        tb,
        capacity,
        backend: createActuatorBackend("cgroup", {
          roots: defaultRoots,
          now: epochNow,
        }),
        hostCpu,
        timing,
        trace,
      };
      const hogPid = tb.hogs[0]!.pid;
      if (!hogPid) throw new Error("conservation-real: the testbed's hog has no pid");
      ctx.progress(0, "probing the cost per packet");
      const probe = await probeServer(tb, hogPid);
      costNs = probe.costNs;
      saturationPps = probe.saturationPps;
      const ppsPerCore = saturationPps;
      const pps = (cores: number) => Math.max(20, Math.round(cores * ppsPerCore));
      const plain = networkSpecs(tb, capacity, false);
      const over = networkSpecs(tb, capacity, true).map((s) => {
        const o = OVERLOAD[s.id as keyof typeof OVERLOAD];
        return o?.goalCores != null ? { ...s, goalPacketsPerSec: pps(o.goalCores) } : s;
      });
      const conserve: LoadPlan = {
        kind: "udp",
        schedules: Object.fromEntries(
          Object.entries(CONSERVE_CORES).map(([k, v]) => [k, { kind: "constant", pps: pps(v) }]),
        ),
      };
      const overload: LoadPlan = {
        kind: "udp",
        schedules: Object.fromEntries(
          Object.entries(OVERLOAD).map(([k, v]) => [
            k,
            { kind: "constant", pps: pps(v.offeredCores) },
          ]),
        ),
      };
      // Closed loop: a connection's cycle is think + service; think sized for TCP_CORES per partition.
      const tcpRps = pps(TCP_CORES);
      const thinkMs = Math.max(
        1,
        Math.round((TCP_CONNECTIONS * 1000) / tcpRps - 1000 / ppsPerCore),
      );
      const tcpLoad: LoadPlan = { kind: "tcp", thinkMs };
      const stepLoad: LoadPlan = {
        kind: "udp",
        schedules: {
          a: { kind: "step", fromPps: pps(0.05), toPps: pps(0.5), atMs: timing.stepAtMs },
          b: { kind: "constant", pps: pps(0.1) },
          c: { kind: "constant", pps: pps(0.1) },
        },
      };
      let doneMs = 0;
      const run = async (o: Parameters<typeof runOne>[1]) => {
        ctx.progress(doneMs / totalMs, `rep ${o.rep + 1}/${reps} ${o.scenario} / ${o.policy}`);
        const r = await runOne(c, o);
        doneMs += timing.warmupMs + o.measureMs;
        outcomes.push(r);
        saveRuns(outcomes);
        return r;
      };
      const runStep = async (rep: number) => {
        const records: CycleRecord[] = [];
        const o = await run({
          scenario: "step",
          policy: "weir",
          rep,
          specs: plain,
          load: stepLoad,
          measureMs: timing.measureMs,
          hogStopped: false,
          onRecord: (r) => records.push(r),
        });
        const at = o.reaction?.stepAtMs;
        // to the load's end (the step time is the load's start + stepAtMs)
        const rows = at == null ? [] : stepTrace(records, "a", at, at - timing.stepAtMs + runMs);
        // what moves the level the reaction is timed to with no change of load (stepDrift)
        const drift = fmtStepDrift(stepDrift(rows, runMs - timing.stepAtMs));
        const head = `rep ${rep + 1}: a ${o.reaction ? `${Math.round(o.reaction.fromMillis)}m -> ${Math.round(o.reaction.toMillis)}m, reaction ${o.reaction.ms == null ? (o.reaction.toMillis - o.reaction.fromMillis < 50 ? "no rise to measure" : "not reached") : `${Math.round(o.reaction.ms)} ms`}` : "no reaction"}, a served ${Math.round((o.served.a ?? Number.NaN) * 1000) / 10} %, p99 ${Math.round((o.p99Ms.a ?? Number.NaN) * 10) / 10} ms, hog ${Math.round(o.hogCores * 100) / 100} cores, ${drift}, load ${loadAvg()}`;
        stepTraces.push(`${head}: ${fmtStepTrace(rows)}`);
        stepDrifts.push(`rep ${rep + 1}: ${drift}`);
        process.stderr.write(`\n${head}\n  ${fmtStepTrace(rows, { why: true, sep: "\n  " })}\n`);
      };
      for (let rep = 0; rep < reps; rep++) {
        if (stepOnly) {
          await runStep(rep);
          continue;
        }
        const order = rotate(CONSERVATION_POLICIES, rep);
        const m = timing.measureMs;
        // A no-hog reference (plain CFS, the hog SIGSTOPped), and every policy beside the hog.
        const noHog = (scenario: ScenarioName, load: LoadPlan) =>
          run({
            scenario,
            policy: "none",
            rep,
            specs: plain,
            load,
            measureMs: m,
            hogStopped: true,
          });
        const everyPolicy = async (scenario: ScenarioName, load: LoadPlan) => {
          for (const policy of order)
            await run({
              scenario,
              policy,
              rep,
              specs: plain,
              load,
              measureMs: m,
              hogStopped: false,
            });
        };
        await noHog("ref-udp", conserve);
        await everyPolicy("conserve", conserve);
        // The same reference again: what the p99 ratio reads when only time differs (A/A).
        await noHog("ref-udp-2", conserve);
        // Isolation reference: static weights (hog in the idle class), hog and servers on
        // separate CPUs.
        const unisolateUdp = isolateNetwork(tb);
        try {
          await run({
            scenario: "isolated-udp",
            policy: "static-weights",
            rep,
            specs: plain,
            load: conserve,
            measureMs: m,
            hogStopped: false,
          });
        } finally {
          unisolateUdp();
        }
        // The cap experiment (issue 9): static weights with the hog hard-capped by hand.
        await run({
          scenario: "hogcap-udp",
          policy: "static-weights",
          rep,
          specs: plain,
          load: conserve,
          measureMs: m,
          hogStopped: false,
          hogCap: REFERENCE_HOG_CAP,
        });
        await noHog("ref-tcp", tcpLoad);
        await everyPolicy("tcp", tcpLoad);
        await noHog("ref-tcp-2", tcpLoad);
        const unisolateTcp = isolateNetwork(tb);
        try {
          await run({
            scenario: "isolated-tcp",
            policy: "static-weights",
            rep,
            specs: plain,
            load: tcpLoad,
            measureMs: m,
            hogStopped: false,
          });
        } finally {
          unisolateTcp();
        }
        for (const policy of order)
          await run({
            scenario: "idle",
            policy,
            rep,
            specs: plain,
            load: { kind: "none" },
            measureMs: timing.idleMeasureMs,
            hogStopped: false,
          });
        for (const policy of rotate(OVERLOAD_POLICIES, rep))
          await run({
            scenario: "overload",
            policy,
            rep,
            specs: over,
            load: overload,
            measureMs: timing.overloadMeasureMs,
            hogStopped: false,
          });
        await runStep(rep);
      }
      notes.push(
        `Probe (partition a's server alone, hog stopped, no manager; ${COST_ROUNDS} SHA-256 rounds per request): ${(costNs / 1e3).toFixed(0)} µs of CPU per request at 400 requests/s, and ${Math.round(saturationPps)} requests/s answered when offered ${Math.round((1.6 * 1e9) / costNs)}/s (its one-thread saturation rate, "one core" below); every load is sized from the saturation rate. conserve: a ${pps(CONSERVE_CORES.a)}, b ${pps(CONSERVE_CORES.b)}, c ${pps(CONSERVE_CORES.c)} packets/s (${CONSERVE_CORES.a + CONSERVE_CORES.b + CONSERVE_CORES.c} cores in all). tcp: ${TCP_CONNECTIONS} connections per partition, think ${thinkMs} ms (aimed at ${TCP_CORES} cores each). overload: offered a ${pps(OVERLOAD.a.offeredCores)} (importance 1, goal ${pps(OVERLOAD.a.goalCores)}), b ${pps(OVERLOAD.b.offeredCores)} (importance 3, goal ${pps(OVERLOAD.b.goalCores)}), c ${pps(OVERLOAD.c.offeredCores)} (importance 5, no goal) packets/s = ${OVERLOAD.a.offeredCores + OVERLOAD.b.offeredCores + OVERLOAD.c.offeredCores} cores against ${capacity / 1000} managed, the hog running. step (weir): a ${pps(0.05)} -> ${pps(0.5)} packets/s at ${timing.stepAtMs / 1000} s, b and c ${pps(0.1)}.`,
      );
    } finally {
      trace?.close();
      hostCpu.close();
      unisolate();
      await testbedDown(tb.stateFile);
    }
    const load1 = loadAvg();
    if (stepOnly)
      return summariseStepOnly(outcomes, stepTraces, [
        ...notes,
        `Load average (1, 5, 15 min): ${load0} at the start, ${load1} at the end (2 CPUs, shared).`,
      ]);
    return summariseConservation(outcomes, {
      reps,
      timing,
      ppsPerCore: saturationPps,
      notes: [
        ...notes,
        `step (weir), what can move the level the reaction is timed to (the median entitlement over the last 1.5 s) with no change of load — a's cost per packet early after the step against that window, its entitlement early after the step, its drops in that window (a step that overloads the server ends at the overload's level): ${stepDrifts.join("; ")}.`,
        `${reps} repetitions; in each, every scenario runs every policy in turn (order rotated by one per repetition). Each run: ${timing.warmupMs / 1000} s warm-up (manager and load running, not measured) then ${timing.measureMs / 1000} s measured (idle: ${timing.idleMeasureMs / 1000} s; overload: ${timing.overloadMeasureMs / 1000} s, so that one cycle is under 1 % of its cycles), 100 ms cycles, capacity ${(2000 - RESERVE_CPU_MILLIS) / 1000} of 2 CPUs (${RESERVE_CPU_MILLIS}m left to the load generator and manager, which run outside the partitions in a cgroup of cpu.shares ${GROUP_CPU_SHARES} inside the testbed's parent cgroup, itself of cpu.shares ${GROUP_CPU_SHARES}: beside the partitions and the hog, so the hog's idle class yields to the generator as it yields to the servers — the generator stands for remote clients, which a host's hog does not slow). Wall time ${((Date.now() - started) / 60_000).toFixed(1)} min.`,
        `Isolation reference: in each repetition the same UDP and TCP loads run once more under static weights (the hog in the idle class) with every hog thread pinned to CPU ${ISOLATED_HOG_CPU} and every thread of every process in the three partitions' cgroups to CPU ${ISOLATED_NET_CPU} (taskset by PID, restored after); the generator and manager are not pinned. It answers whether giving the servers a CPU of their own (a cpuset split instead of weights) would protect their p99 better: the hog then shares no CPU with them, but the three servers share one.`,
        `Cap reference (issue 9's cap experiment): in each repetition the UDP load runs once more under static weights with the hog hard-capped by hand at ${REFERENCE_HOG_CAP.capMillis}m (cpu.cfs_quota_us ${hogCapFiles(REFERENCE_HOG_CAP).quotaUs} per ${REFERENCE_HOG_CAP.periodUs} µs period, cpu.cfs_burst_us ${hogCapFiles(REFERENCE_HOG_CAP).burstUs}; written after the manager's first cycle, removed after the run). It asks whether a cap on batch — the "suppress batch" cap the control law allows — shortens the servers' waits: a CPU that runs only the idle-class hog never goes idle, so the kernel's newly-idle balance never pulls a server queued on the other CPU; under the cap the hog is throttled for part of each period and a CPU can go idle.`,
        `Where the servers wait: in every run with a load, ${TRACE_MS / 1000} s of the measured window (from 1 s in) are traced with the kernel's sched_switch, sched_wakeup and sched_migrate_task events in a tracefs instance of this benchmark's own (bench/sched-trace.ts); for each interval a server thread was runnable but not running, the table "where the servers waited" adds up what the other CPU ran meanwhile (idle, only the hog, a server or the generator) and counts the queued servers the kernel moved to the other CPU. The two notes below give those figures from this run; docs/measured-facts.md (cgroups) has the A/B runs behind them (what was ruled out).`,
        "No-hog reference: in each repetition the same UDP and TCP loads run once under plain CFS with the hog's process SIGSTOPped by PID (SIGCONT after); every policy's p99 with the hog is divided by that run's p99 of the same partition. The ratio therefore counts both the hog's harm and any harm the policy's own caps do. The latency targets are read per partition: each partition's ratio, its median over the repetitions, the worst partition's median (bench/partition-ratio.ts). The worst partition of each repetition is shown too; the largest of three ratios of two 6 s runs' p99s reads above 1 with no hog at all, and each repetition measures by how much by running the no-hog reference a second time after the policies' runs (the \"reference against itself\" figures: the second run's p99s divided by the first's).",
        "Host idle is /proc/stat's idle + iowait over the measured window, for the whole host (this process, the generator and other engineers' work included). Hog CPU is its cgroup's cpuacct.usage over the same window. served = replies ÷ requests sent in the measured window (UDP: reply within 1 s; TCP: replies to the requests sent). Network partitions: importance 3, weight 100, no goal, max = capacity (overload: see above); the hog: batch, importance 5.",
        BASELINES_ON_THE_TESTBED_NOTE,
        `Load average (1, 5, 15 min): ${load0} at the start, ${load1} at the end (2 CPUs; other engineers' tests may have run at the same time).`,
        describeLlc(readLlc()),
      ],
    });
  },
};

/** `--scenarios step`: the reaction, a per-repetition table and each repetition's trace. */
function summariseStepOnly(
  outcomes: RunOutcome[],
  traces: string[],
  notes: string[],
): Omit<BenchResult, "machine" | "date" | "command"> {
  const ms = outcomes.map((o) => o.reaction?.ms ?? Number.NaN);
  const reached = ms.filter((x) => Number.isFinite(x)).length;
  const s = stats(ms);
  return {
    name: "conservation-real",
    figures: [
      {
        name: `weir, step: load step -> 90 % of new entitlement applied (${reached} of ${outcomes.length} repetitions got there)`,
        ...repeated(ms, 0),
        unit: "ms",
        target: "<= 300 ms",
        meets: !!s && reached === outcomes.length && s.median <= 300,
      },
    ],
    tables: [
      {
        title: "step, per repetition",
        columns: [
          "repetition",
          "a before (m)",
          "after (m)",
          "reaction (ms)",
          "a served %",
          "a p99 ms",
        ],
        rows: outcomes.map((o) => [
          o.rep + 1,
          o.reaction ? Math.round(o.reaction.fromMillis) : "–",
          o.reaction ? Math.round(o.reaction.toMillis) : "–",
          !o.reaction
            ? "–"
            : o.reaction.ms != null
              ? Math.round(o.reaction.ms)
              : o.reaction.toMillis - o.reaction.fromMillis < 50
                ? "no rise to measure"
                : "not reached",
          Math.round((o.served.a ?? Number.NaN) * 1000) / 10,
          Math.round((o.p99Ms.a ?? Number.NaN) * 10) / 10,
        ]),
      },
    ],
    notes: [
      ...notes,
      `Reaction per repetition: ${fmtStats(ms, 0)} ms (median [min–max]).`,
      ...traces.map((t) => `a's cycles from the step to the end of the run, ${t}`),
    ],
  };
}

if (isMain(import.meta.url)) await runStandalone(bench);
