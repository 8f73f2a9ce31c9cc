// weir's reaction to a load step on the real testbed: one partition's traffic steps from 5 % to
// 90 % of what its server can answer on one CPU (measured by a probe at the start), well above
// its equal share of capacity, while two others stay at 10 % and a 2-thread batch hog runs.
// Measured per repetition: from the step to the first cycle whose applied entitlement covered
// 90 % of the rise (reactionMs in real-common.ts), and cgroup writes per partition per
// second over the run. Same testbed, manager, sensors and actuator as conservation-real.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench reaction-real [--quick] [--reps N]  or  npx tsx bench/reaction-real.ts [...]
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord } from "../src/core/model.ts";
import { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  type Ctx,
  type LoadPlan,
  networkSpecs,
  type RunOutcome,
  runOne,
  timingFor,
} from "./conservation-run.ts";
import type { Benchmark } from "./harness.ts";
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
  fmtStepTrace,
  GROUP_CPU_SHARES,
  loadAvg,
  RESERVE_CPU_MILLIS,
  STEP_EARLY_LABEL,
  STEP_SETTLED_LABEL,
  type StepDrift,
  stepDrift,
  stepTrace,
} from "./real-common.ts";
import { probeServer } from "./server-probe.ts";

/** The step scenario (balance-bpf runs it too): rates as fractions of a server's one-CPU saturation rate. */
export const STEP_CORES = { from: 0.05, to: 0.9, others: 0.1 } as const;

/** The step scenario's load: a steps from→to at `stepAtMs`, b and c constant; `pps` sizes cores. */
export const stepLoad = (pps: (cores: number) => number, stepAtMs: number): LoadPlan => ({
  kind: "udp",
  schedules: {
    a: { kind: "step", fromPps: pps(STEP_CORES.from), toPps: pps(STEP_CORES.to), atMs: stepAtMs },
    b: { kind: "constant", pps: pps(STEP_CORES.others) },
    c: { kind: "constant", pps: pps(STEP_CORES.others) },
  },
});

/** One record's decisions, shortened: partition, entitlement, CPU used, CPU delay and the why. */
const why = (r: CycleRecord): string =>
  r.partitions
    .map(
      (p) =>
        `${p.id} ${p.directive?.cpuMillis ?? "?"}m (uses ${Math.round((p.throughput?.cpuCores ?? 0) * 1000)}m, CPU delay ${p.throughput?.cpuDelayFraction == null ? "?" : `${Math.round(p.throughput.cpuDelayFraction * 100)} %`}): "${(p.decision?.why ?? "").slice(0, 330)}…"`,
    )
    .join("; ");

/** A repetition's StepDrift as the per-repetition table's last three cells. */
export const driftCells = (d: StepDrift | null): [number | string, string, number | string] =>
  d == null
    ? ["–", "–", "–"]
    : [
        Number.isFinite(d.earlyMillis) ? Math.round(d.earlyMillis) : "–",
        Number.isFinite(d.earlyVelocityPps) && Number.isFinite(d.lateVelocityPps)
          ? `${Math.round(d.earlyVelocityPps)} → ${Math.round(d.lateVelocityPps)} (× ${(d.lateVelocityPps / d.earlyVelocityPps).toFixed(2)})`
          : "–",
        Number.isFinite(d.lateDroppedPps) ? Math.round(d.lateDroppedPps) : "–",
      ];

/** Indices of the slowest and the fastest repetition (not reached counts as slowest), once each. */
export const slowestAndFastest = (ms: number[]): number[] => {
  if (ms.length === 0) return [];
  const key = (x: number) => (Number.isFinite(x) ? x : Number.POSITIVE_INFINITY);
  let slow = 0;
  let fast = 0;
  ms.forEach((x, i) => {
    if (key(x) > key(ms[slow]!)) slow = i;
    if (key(x) < key(ms[fast]!)) fast = i;
  });
  return slow === fast ? [slow] : [slow, fast];
};

export const bench: Benchmark = {
  name: "reaction-real",
  description:
    "weir's reaction on the real testbed: a load step well above the partition's equal share -> 90 % of the new entitlement applied, and cgroup writes per partition per second (root)",
  async run(ctx) {
    const reps = realBenchReps("reaction-real", ctx);
    const timing = timingFor(ctx.quick);
    const load0 = loadAvg();
    const prefix = `wr${process.pid % 100000}`;
    const tb = await testbedUp({
      prefix,
      partitions: ["a", "b", "c"].map((name) => ({ name })),
      hogs: [{ name: "hog", cpus: 2 }],
      costRounds: COST_ROUNDS,
      maxLifetimeMs: reps * 20_000 + 10 * 60_000,
      groupCpuShares: GROUP_CPU_SHARES,
    });
    const outcomes: RunOutcome[] = [];
    const hostCpu = new HeldHostCpu(defaultRoots.procfs);
    let unisolate = () => {};
    let sizing = "";
    /** cgroup files written over all runs, by partition and file. */
    const files: Record<string, number> = {};
    /** Per repetition, the last cycle's decision for every partition (the policy's own words). */
    const lastDecisions: string[] = [];
    /** Per repetition, a's cycles from the step to its reaction (or 2 s after the step). */
    const traces: string[] = [];
    /** Per repetition, what can move the level its reaction is timed to (stepDrift). */
    const drifts: Array<StepDrift | null> = [];
    try {
      unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
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
      };
      const hogPid = tb.hogs[0]!.pid;
      if (!hogPid) throw new Error("reaction-real: the testbed's hog has no pid");
      ctx.progress(0, "probing the server");
      const probe = await probeServer(tb, hogPid);
      const pps = (cores: number) => Math.max(20, Math.round(cores * probe.saturationPps));
      sizing = `Probe: ${Math.round(probe.saturationPps)} requests/s answered by one server alone (its one-CPU saturation rate). Step: a ${pps(STEP_CORES.from)} -> ${pps(STEP_CORES.to)} packets/s at ${timing.stepAtMs / 1000} s of a ${(timing.warmupMs + timing.measureMs) / 1000} s run, b and c ${pps(STEP_CORES.others)} packets/s, the 2-thread hog running; an equal share of the ${capacity}m capacity among the 3 network partitions is ${Math.round(capacity / 3)}m.`;
      for (let rep = 0; rep < reps; rep++) {
        let last: CycleRecord | null = null;
        const records: CycleRecord[] = [];
        ctx.progress(rep / reps, `rep ${rep + 1}/${reps}`);
        const outcome = await runOne(c, {
          scenario: "step",
          policy: "weir",
          rep,
          specs: networkSpecs(tb, capacity, false),
          load: stepLoad(pps, timing.stepAtMs),
          measureMs: timing.measureMs,
          hogStopped: false,
          onRecord: (r) => {
            records.push(r);
            for (const p of r.partitions)
              for (const f of p.written) files[`${p.id} ${f}`] = (files[`${p.id} ${f}`] ?? 0) + 1;
            // The last cycle with traffic (records go on while the load drains).
            const a = r.partitions.find((p) => p.id === "a");
            if ((a?.throughput?.offeredPacketsPerSec ?? 0) > 0) last = r;
          },
        });
        outcomes.push(outcome);
        if (last) lastDecisions.push(why(last));
        const step = outcome.reaction?.stepAtMs;
        traces.push(
          step == null
            ? "no step time"
            : fmtStepTrace(stepTrace(records, "a", step, step + (outcome.reaction?.ms ?? 2000))),
        );
        // to the load's end, as the level the reaction is timed to (the last 1.5 s)
        const runMs = timing.warmupMs + timing.measureMs;
        drifts.push(
          step == null
            ? null
            : stepDrift(
                stepTrace(records, "a", step, step - timing.stepAtMs + runMs),
                runMs - timing.stepAtMs,
              ),
        );
      }
    } finally {
      hostCpu.close();
      unisolate();
      await testbedDown(tb.stateFile);
    }
    const ms = outcomes.map((o) => o.reaction?.ms ?? Number.NaN);
    const s = stats(ms);
    const reached = ms.filter((x) => Number.isFinite(x)).length;
    const writes = stats(outcomes.map((o) => o.writesPerPartitionSec));
    return {
      name: "reaction-real",
      figures: [
        {
          name: `weir: load step -> 90 % of new entitlement applied (${reached} of ${reps} repetitions got there)`,
          ...repeated(ms, 0),
          unit: "ms",
          target: "<= 300 ms",
          meets: !!s && reached === reps && s.median <= 300,
        },
        {
          name: "weir: cgroup writes per partition per second over the measured window, step included (median)",
          value: writes ? Math.round(writes.median * 100) / 100 : Number.NaN,
          unit: "/s",
        },
      ],
      tables: [
        {
          title: "per repetition",
          columns: [
            "repetition",
            "a's entitlement before (m)",
            "after (m)",
            "reaction (ms)",
            "a served %",
            "a p99 ms",
            "writes /partition/s",
            "hog CPU (cores)",
            `a's entitlement ${STEP_EARLY_LABEL} (m)`,
            `a's velocity ${STEP_EARLY_LABEL} → ${STEP_SETTLED_LABEL}`,
            `a's drops/s, ${STEP_SETTLED_LABEL}`,
          ],
          rows: outcomes.map((o) => [
            o.rep + 1,
            o.reaction ? Math.round(o.reaction.fromMillis) : "–",
            o.reaction ? Math.round(o.reaction.toMillis) : "–",
            o.reaction?.ms == null ? "not reached" : Math.round(o.reaction.ms),
            Math.round((o.served.a ?? Number.NaN) * 1000) / 10,
            Math.round((o.p99Ms.a ?? Number.NaN) * 10) / 10,
            Math.round(o.writesPerPartitionSec * 100) / 100,
            Math.round(o.hogCores * 100) / 100,
            ...driftCells(drifts[o.rep] ?? null),
          ]),
        },
      ],
      notes: [
        sizing,
        `Reaction per repetition: ${fmtStats(ms, 0)} ms (median [min–max]). Time is from the step (load start + ${timing.stepAtMs} ms, the generator's clock) to the end of the first cycle whose directive for a covered 90 % of the way from the median entitlement in the second before the step to the median over the last 1.5 s; 100 ms cycles.`,
        "The last three columns say what can move the level the reaction is timed to with no change of load: a's entitlement early after the step (+0.3–1.5 s) beside that level (after), its cost per packet then against the last 1.5 s (a server's CPU per packet changes once it has CPU to spare), and its drops in the last 1.5 s (a step that overloads the server ends at the overload's level, not the step's).",
        `Load average (1, 5, 15 min): ${load0} at the start, ${loadAvg()} at the end (2 CPUs, shared).`,
        `cgroup files written over all ${reps} runs (${reps} × ${(timing.warmupMs + timing.measureMs) / 1000} s): ${Object.entries(
          files,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}.`,
        `The last cycle with traffic of the first repetition, in weir's words: ${lastDecisions[0] ?? "no record"}`,
        ...slowestAndFastest(ms).map(
          (i) =>
            `a's cycles from the step to its reaction in repetition ${i + 1} (${Number.isFinite(ms[i]!) ? `${Math.round(ms[i]!)} ms` : "not reached: 2 s shown"}): ${traces[i] ?? "no record"}`,
        ),
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
