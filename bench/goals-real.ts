// Goals that mean what WLM means, on the real testbed. Two partitions (netns + veth + cgroup v1,
// one SHA-256 packet server each, answering closed-loop TCP), both servers pinned to the same
// CPU and both saturated by closed-loop TCP clients. A (importance 1) gets a goal of 80 % of
// what it serves alone; B (importance 3) has none. A goal-managed policy should hold A just
// above its goal and give B the rest (the surplus); plain CFS splits the CPU in two (A misses
// its goal) and fixed weights give A what its weight says whatever its goal (B starves).
//
// Rates are counted as weir's sensor counts them (host-side veth: offered = tx, served = rx:
// replies plus ACKs) and as the client counts them (replies/s). A's solo rate is measured with
// B's server SIGSTOPped (by PID; SIGCONT after) before and after every run: the goal weir gets
// comes from the solo run before, the surplus from both (bracketPlan). Repetitions are
// interleaved: every repetition runs every policy in turn (order rotated per repetition);
// figures are median [min–max] over repetitions.
// One run and the host plumbing: goals-run.ts; the tables and figures: goals-summary.ts.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench goals-real [--quick] [--reps N]
//  or: npx tsx bench/goals-real.ts [--json] [--quick] [--reps N] [--policies weir,none,…]
//      [--trace FILE]
//      (--policies: only those runs, for iterating on one policy; the report's rows for the
//      others are empty; --trace: every managed run's cycles, one JSON line each, to FILE)
import fs from "node:fs";
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord } from "../src/core/model.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import { bracketPlan, planGoal } from "./goals-real-math.ts";
import {
  GENERATOR_CPU,
  GOAL_FRACTION,
  type GoalRun,
  leftovers,
  type Measured,
  measureTcp,
  POLICIES,
  type PolicyRun,
  runPolicy,
  SERVER_CPU,
  SOLO_WARMUP_MS,
  timingFor,
} from "./goals-run.ts";
import { summarise } from "./goals-summary.ts";
import type { Benchmark } from "./harness.ts";
import {
  isMain,
  isolateSelf,
  parseChoiceListOption,
  realBenchReps,
  runStandalone,
} from "./harness.ts";
import {
  COST_ROUNDS,
  epochNow,
  GROUP_CPU_SHARES,
  loadAvg,
  pin,
  pinPartitions,
  rotate,
  sleep,
} from "./real-common.ts";

/** `--policies a,b` from argv: the runs to make (names of POLICIES); undefined when absent. */
export function parsePoliciesOption(argv: readonly string[]): PolicyRun[] | undefined {
  return parseChoiceListOption(argv, "--policies", POLICIES);
}

/** `--trace FILE` from argv: where to write the managed runs' cycles; undefined when absent. */
export function parseTraceOption(argv: readonly string[]): string | undefined {
  const i = argv.indexOf("--trace");
  if (i < 0) return undefined;
  const f = argv[i + 1];
  if (!f || f.startsWith("--")) throw new Error("--trace: needs a file name");
  return f;
}

/** One cycle of a managed run as a trace line: per partition what weir read, set and wrote. */
export function traceLine(policy: PolicyRun, rep: number, r: CycleRecord): string {
  return JSON.stringify({
    policy,
    rep,
    startedAtMs: Math.round(r.startedAtMs),
    partitions: r.partitions.map((p) => ({
      id: p.id,
      servedPacketsPerSec: p.throughput?.servedPacketsPerSec,
      cpuCores: p.throughput?.cpuCores,
      throttledFraction: p.throughput?.throttledFraction,
      cpuDelayFraction: p.throughput?.cpuDelayFraction,
      velocityPacketsPerCpuSec: p.decision?.velocityPacketsPerCpuSec,
      performanceIndex: p.decision?.performanceIndex,
      cpuMillis: p.directive?.cpuMillis,
      weight: p.directive?.weight,
      capCpuMillis: p.directive?.capCpuMillis ?? null,
      capReason: p.directive?.capReason ?? null,
      written: p.written,
      why: p.decision?.why,
    })),
  });
}

export const bench: Benchmark = goalsRealBench(POLICIES);

/**
 * goals-real over `policies` (all of POLICIES for the report; fewer when iterating); with
 * `tracePath`, every managed run's cycles go there, one JSON line each (traceLine).
 */
export function goalsRealBench(policies: readonly PolicyRun[], tracePath?: string): Benchmark {
  return {
    name: "goals-real",
    description:
      "goals as WLM means them on the real testbed: two closed-loop-saturated packet servers pinned to one CPU, A (importance 1) with a goal at 80 % of its solo rate, B (importance 3) without; A served ÷ goal, B served ÷ surplus, p99, for weir and the baselines, interleaved repetitions, median [min–max] (root)",
    async run(ctx) {
      const reps = realBenchReps("goals-real", ctx);
      const timing = timingFor(ctx.quick);
      const runMs = timing.warmupMs + timing.measureMs;
      const soloMs = SOLO_WARMUP_MS + timing.soloMs;
      const totalMs = reps * ((policies.length + 1) * soloMs + policies.length * runMs);
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
      const trace = tracePath ? fs.openSync(tracePath, "w") : null;
      try {
        unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
        const a = tb.partitions.find((p) => p.name === "a")!;
        const b = tb.partitions.find((p) => p.name === "b")!;
        if (!a.serverPid || !b.serverPid)
          throw new Error("goals-real: the testbed recorded no server pid");
        // every process in their cgroups, not only the servers' pids (pinPartitions says why)
        pinPartitions([a, b], SERVER_CPU);
        notes.push(
          `Besides the servers' PIDs, every other process in their cgroups was pinned to CPU ${SERVER_CPU} too, and weir's reachable CPUs of both partitions were checked to be CPU ${SERVER_CPU} before the first run (pinPartitions in bench/real-common.ts).`,
        );
        selfAffinity = pin(process.pid, String(GENERATOR_CPU));
        const backend = createActuatorBackend("cgroup", {
          roots: defaultRoots,
          now: epochNow,
        });

        // A alone: B's server stopped (by pid), plain CFS, no manager.
        const soloRun = async () => {
          process.kill(b.serverPid!, "SIGSTOP");
          try {
            return await measureTcp(tb, ["a"], {
              warmupMs: SOLO_WARMUP_MS,
              measureMs: timing.soloMs,
            });
          } finally {
            process.kill(b.serverPid!, "SIGCONT");
          }
        };
        let doneMs = 0;
        const solo = async (rep: number) => {
          ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} A solo`);
          const m = await soloRun();
          solos.push(m);
          doneMs += soloMs;
          await sleep(300);
          return m;
        };
        for (let rep = 0; rep < reps; rep++) {
          // Every run between two solo runs of A: its goal from the one before, its surplus
          // from both (bracketPlan): the host's speed drifts within a repetition.
          let before = await solo(rep);
          for (const policy of rotate(policies, rep)) {
            ctx.progress(doneMs / totalMs, `rep ${rep + 1}/${reps} ${policy}`);
            const given = planGoal(before.rate.a!, GOAL_FRACTION);
            const run = await runPolicy(
              tb,
              policy,
              rep,
              given,
              timing,
              backend,
              trace === null
                ? undefined
                : (r) => fs.writeSync(trace, `${traceLine(policy, rep, r)}\n`),
            );
            doneMs += runMs;
            await sleep(300);
            const after = await solo(rep);
            run.solo = { before: before.rate.a!, after: after.rate.a! };
            run.plan = bracketPlan(before.rate.a!, after.rate.a!, GOAL_FRACTION);
            runs.push(run);
            before = after;
          }
        }
      } finally {
        if (trace !== null) fs.closeSync(trace);
        if (selfAffinity) pin(process.pid, selfAffinity);
        unisolate();
        await testbedDown(tb.stateFile);
      }
      const left = leftovers(tb);
      if (left.length > 0)
        notes.push(`LEFT BEHIND after testbed down (a defect): ${left.join(", ")}.`);
      const load1 = loadAvg();
      if (policies.length < POLICIES.length)
        notes.push(`Only these runs were made (--policies): ${policies.join(", ")}.`);
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
}

if (isMain(import.meta.url))
  await runStandalone(
    goalsRealBench(
      parsePoliciesOption(process.argv.slice(2)) ?? POLICIES,
      parseTraceOption(process.argv.slice(2)),
    ),
  );
