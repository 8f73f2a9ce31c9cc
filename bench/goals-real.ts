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
// One run and the host plumbing: goals-run.ts; the tables and figures: goals-summary.ts.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench goals-real [--quick] [--reps N]
//  or: npx tsx bench/goals-real.ts [--json] [--quick] [--reps N] [--policies weir,none,…]
//      (--policies: only those runs, for iterating on one policy; the report's rows for the
//      others are empty)
import { createActuatorBackend } from "../src/actuators/index.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import { planGoal } from "./goals-real-math.ts";
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
  timingFor,
} from "./goals-run.ts";
import { summarise } from "./goals-summary.ts";
import type { Benchmark } from "./harness.ts";
import { isMain, isolateSelf, realBenchReps, runStandalone } from "./harness.ts";
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
  const i = argv.indexOf("--policies");
  if (i < 0) return undefined;
  const v = argv[i + 1] ?? "";
  const names = v.split(",").filter((x) => x !== "");
  const bad = names.filter((x) => !(POLICIES as readonly string[]).includes(x));
  if (names.length === 0 || bad.length > 0)
    throw new Error(
      `--policies: must be a comma-separated list of ${POLICIES.join(", ")}; got ${JSON.stringify(bad.length > 0 ? bad.join(",") : v)}`,
    );
  return names as PolicyRun[];
}

export const bench: Benchmark = goalsRealBench(POLICIES);

/** goals-real over `policies` (all of POLICIES for the report; fewer when iterating). */
export function goalsRealBench(policies: readonly PolicyRun[]): Benchmark {
  return {
    name: "goals-real",
    description:
      "goals as WLM means them on the real testbed: two closed-loop-saturated packet servers pinned to one CPU, A (importance 1) with a goal at 80 % of its solo rate, B (importance 3) without; A served ÷ goal, B served ÷ surplus, p99, for weir and the baselines, interleaved repetitions, median [min–max] (root)",
    async run(ctx) {
      const reps = realBenchReps("goals-real", ctx);
      const timing = timingFor(ctx.quick);
      const runMs = timing.warmupMs + timing.measureMs;
      const totalMs = reps * (timing.soloMs + policies.length * runMs);
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
          for (const policy of rotate(policies, rep)) {
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
  await runStandalone(goalsRealBench(parsePoliciesOption(process.argv.slice(2)) ?? POLICIES));
