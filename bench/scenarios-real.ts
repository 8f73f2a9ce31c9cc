// The small scenarios on the real testbed: netns + veth + cgroup v1 + a SHA-256 UDP packet
// server per partition and a batch hog (src/testbed), real UDP load (src/testbed/load.ts),
// and weir's real Manager with the real sensors and the cgroup actuator, for each policy, in
// interleaved repetitions (`--reps N`, default 5; the policy order rotates each repetition):
// every cell is median [min–max] over them.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench scenarios-real [--quick] [--reps N]   or   npx tsx bench/scenarios-real.ts [--json] [--quick] [--reps N]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { PartitionSpec } from "../src/core/model.ts";
import type { Policy } from "../src/policy/types.ts";
import { describeLlc, readLlc } from "../src/sensors/cpu-caches.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { policyFactories, weirWithoutWeightFloor } from "../src/sim/policies.ts";
import { runLoad } from "../src/testbed/load.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import type { BenchFigure, Benchmark } from "./harness.ts";
import {
  fmtStats,
  isMain,
  isolateSelf,
  readUsageNs,
  realBenchReps,
  runStandalone,
  stats,
} from "./harness.ts";
import {
  BASELINES_ON_THE_TESTBED_NOTE,
  COST_ROUNDS,
  GROUP_CPU_SHARES,
  RESERVE_CPU_MILLIS,
  rotate,
} from "./real-common.ts";
import {
  FIXED_HOG_PPS,
  hogRatioWhy,
  REAL_CORES,
  REAL_RUN_MS,
  type RealOutcome,
  realScenarios,
} from "./scenarios-real-sizing.ts";
import { probeServer } from "./server-probe.ts";
import { testbedManager } from "./testbed-manager.ts";

/**
 * VPA-style at its 1-minute loop cannot act in a 16 s run (it would equal plain CFS), so the
 * real testbed runs its 60× faster variant. weir without its light-partition weight floor
 * (weights that follow entitlement alone) runs beside weir: what the floor changes.
 */
const REAL_POLICIES = [
  "weir",
  weirWithoutWeightFloor.name,
  "none",
  "static",
  "static-weights",
  "vpa-style-fast",
  "koordinator-style",
];

const REAL_FACTORIES = [...policyFactories, weirWithoutWeightFloor];

export const bench: Benchmark = {
  name: "scenarios-real",
  description:
    "the hog and step scenarios on the real testbed (netns, veth, cgroup v1, UDP packet servers, a batch hog) for weir and the baselines (root)",
  async run(ctx) {
    const reps = realBenchReps("scenarios-real", ctx);
    // Durations only (rates come from the probe once the testbed is up).
    let scenarios = realScenarios(ctx.quick, 1);
    const totalMs = scenarios.reduce((s, x) => s + x.durationMs, 0) * REAL_POLICIES.length * reps;
    let doneMs = 0;
    const prefix = `wb${process.pid % 100000}`;
    const tb = await testbedUp({
      prefix,
      partitions: ["a", "b", "c"].map((name) => ({ name })),
      hogs: [{ name: "hog", cpus: 2 }],
      costRounds: COST_ROUNDS,
      maxLifetimeMs: totalMs + 10 * 60_000,
      // Against the rest of the host: keeps other work's noise out of the comparison.
      groupCpuShares: GROUP_CPU_SHARES,
    });
    const figures: BenchFigure[] = [];
    const rows: Array<Array<string | number>> = [];
    const notes: string[] = [];
    let unisolate = () => {};
    try {
      unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
      const capacity = 2000 - RESERVE_CPU_MILLIS;
      const hogPid = tb.hogs[0]!.pid;
      if (!hogPid) throw new Error("scenarios-real: the testbed's hog has no pid");
      ctx.progress(0, "probing the cost per packet");
      const probe = await probeServer(tb, hogPid);
      scenarios = realScenarios(ctx.quick, probe.saturationPps);
      const specs: PartitionSpec[] = [
        ...tb.partitions.map(
          (p): PartitionSpec => ({
            id: p.name,
            kind: "network",
            minCpuMillis: 0,
            maxCpuMillis: capacity,
            weight: 100,
            importance: 3,
          }),
        ),
        ...tb.hogs.map(
          (h): PartitionSpec => ({
            id: h.name,
            kind: "batch",
            minCpuMillis: 0,
            maxCpuMillis: capacity,
            weight: 100,
            importance: 3,
          }),
        ),
      ];
      const now = () => performance.timeOrigin + performance.now();
      const backend = createActuatorBackend("cgroup", { roots: defaultRoots, now });
      // results[scenario][policy][repetition]
      const results = new Map<string, Map<string, RealOutcome[]>>();
      // The host's 1-minute load average as each run starts (the machine is shared).
      const loads: number[] = [];
      for (let rep = 0; rep < reps; rep++) {
        for (const sc of scenarios) {
          for (const policyName of rotate(REAL_POLICIES, rep)) {
            const factory = REAL_FACTORIES.find((p) => p.name === policyName)!;
            const policy: Policy = factory.make({
              scenario: {
                name: sc.name,
                description: sc.description,
                cpus: 2,
                reserveCpuMillis: RESERVE_CPU_MILLIS,
                durationMs: sc.durationMs,
                intervalMs: 100,
                tickMs: 1,
                seed: 0,
                partitions: [],
              },
            });
            const manager = testbedManager(tb, specs, {
              capacityCpuMillis: capacity,
              intervalMs: 100,
              policy,
              now,
              backend,
            });
            loads.push(os.loadavg()[0]!);
            let writes = 0;
            let cycles = 0;
            let hogCapped = 0;
            const delays: number[] = [];
            const weightSums = [0, 0, 0];
            const weightNs = [0, 0, 0];
            manager.subscribe((r) => {
              cycles++;
              for (const p of r.partitions) {
                writes += p.written.length;
                if (p.id === "hog") {
                  if (p.directive && Number.isFinite(p.directive.capCpuMillis)) hogCapped++;
                } else {
                  if (p.throughput?.cpuDelayFraction != null)
                    delays.push(p.throughput.cpuDelayFraction);
                  const k = tb.partitions.findIndex((x) => x.name === p.id);
                  if (k >= 0 && p.directive) {
                    weightSums[k]! += p.directive.weight;
                    weightNs[k]!++;
                  }
                }
              }
            });
            const ac = new AbortController();
            const loop = manager.start(ac.signal);
            const hogDirs = tb.hogs[0]!.cgroupDirs;
            const hog0 = readUsageNs(hogDirs);
            const part0 = tb.partitions.map((p) => readUsageNs(p.cgroupDirs));
            const label = `${sc.name} / ${policyName} / repetition ${rep + 1} of ${reps}`;
            let load: Awaited<ReturnType<typeof runLoad>>;
            try {
              load = await runLoad({
                targets: tb.partitions.map((p) => ({
                  name: p.name,
                  addr: p.nsAddr,
                  port: p.port,
                  schedule: sc.schedules[p.name]!,
                })),
                durationMs: sc.durationMs,
                maxPackets: Math.ceil(
                  (sc.durationMs / 1000) *
                    1.2 *
                    Object.values(sc.schedules).reduce(
                      (s, x) =>
                        s + (x.kind === "step" ? x.toPps : x.kind === "constant" ? x.pps : 0),
                      0,
                    ),
                ),
                reportIntervalMs: 1000,
                onTick: (t) =>
                  ctx.progress((doneMs + Math.min(sc.durationMs, t.elapsedMs)) / totalMs, label),
              });
            } finally {
              ac.abort();
              await loop;
              manager.shutdown("restore");
            }
            const hogCores = (readUsageNs(hogDirs) - hog0) / 1e6 / load.sendingMs;
            const cpuCores = tb.partitions.map(
              (p, i) => (readUsageNs(p.cgroupDirs) - part0[i]!) / 1e6 / load.sendingMs,
            );
            doneMs += sc.durationMs;
            const p99s = load.targets.map((t) => t.latency.p99Ms ?? Number.NaN);
            if (!results.has(sc.name)) results.set(sc.name, new Map());
            const byPolicy = results.get(sc.name)!;
            if (!byPolicy.has(policyName)) byPolicy.set(policyName, []);
            byPolicy.get(policyName)!.push({
              served: load.totals.answered / Math.max(1, load.totals.sent),
              servedBy: load.targets.map((t) => t.answered / Math.max(1, t.sent)),
              sentOfScheduled:
                load.targets.reduce((s, t) => s + t.sent, 0) /
                Math.max(
                  1,
                  load.targets.reduce((s, t) => s + t.scheduled, 0),
                ),
              lost: load.totals.lost,
              p99s,
              worstP99: Math.max(...p99s),
              hogCores,
              writes,
              generatorCores: load.generator.cpuCores,
              cpuCores,
              netCpuDelay: stats(delays)
                ? delays.reduce((s, x) => s + x, 0) / delays.length
                : Number.NaN,
              hogCappedFraction: cycles > 0 ? hogCapped / cycles : 0,
              weights: weightSums.map((w, k) => (weightNs[k]! > 0 ? w / weightNs[k]! : Number.NaN)),
            });
          }
        }
      }
      // Every run's raw outcome, to look into a section's figures after the report is written.
      fs.writeFileSync(
        path.join(os.tmpdir(), "weir-scenarios-real-runs.json"),
        JSON.stringify(
          Object.fromEntries([...results].map(([k, m]) => [k, Object.fromEntries(m)])),
          null,
          1,
        ),
      );
      for (const sc of scenarios)
        for (const policyName of REAL_POLICIES) {
          const o = results.get(sc.name)?.get(policyName) ?? [];
          rows.push([
            sc.name,
            REAL_FACTORIES.find((p) => p.name === policyName)?.label ?? policyName,
            fmtStats(o.map((x) => x.served * 100)),
            fmtStats(
              o.map((x) => x.lost),
              0,
            ),
            ...["a", "b", "c"].map((_, i) => fmtStats(o.map((x) => x.p99s[i] ?? Number.NaN))),
            fmtStats(
              o.map((x) => x.hogCores),
              2,
            ),
            ...["a", "b", "c"].map((_, i) =>
              fmtStats(
                o.map((x) => x.cpuCores[i] ?? Number.NaN),
                2,
              ),
            ),
            fmtStats(o.map((x) => x.netCpuDelay * 100)),
            fmtStats(
              o.map((x) => x.hogCappedFraction * 100),
              0,
            ),
            fmtStats(
              o.map((x) => x.writes),
              0,
            ),
            fmtStats(
              o.map((x) => x.generatorCores),
              2,
            ),
          ]);
        }
      const median = (xs: number[]) => stats(xs)?.median ?? Number.NaN;
      for (const [scName, byPolicy] of results) {
        const w = byPolicy.get("weir");
        if (!w) continue;
        const wServed = median(w.map((x) => x.served));
        const wP99 = median(w.map((x) => x.worstP99));
        for (const [policyName, r] of byPolicy) {
          if (policyName === "weir") continue;
          const served = median(r.map((x) => x.served));
          const p99 = median(r.map((x) => x.worstP99));
          // Paired by repetition: in how many the baseline did better.
          const wonIn = (better: (o: RealOutcome, wr: RealOutcome) => boolean) =>
            `in ${r.filter((x, i) => w[i] !== undefined && better(x, w[i]!)).length} of ${Math.min(r.length, w.length)} repetitions`;
          const wins: string[] = [];
          if (served - wServed > 0.005)
            wins.push(
              `served ${(served * 100).toFixed(1)} % vs weir's ${(wServed * 100).toFixed(1)} % (median; better ${wonIn((a, b) => a.served > b.served)})`,
            );
          if (p99 < 0.8 * wP99)
            wins.push(
              `worst-partition p99 ${p99.toFixed(1)} ms vs weir's ${wP99.toFixed(1)} ms (median; lower ${wonIn((a, b) => a.worstP99 < b.worstP99)})`,
            );
          if (wins.length > 0)
            notes.push(
              `weir loses on the real testbed (${scName}) to ${REAL_FACTORIES.find((p) => p.name === policyName)?.label}: ${wins.join("; ")}.`,
            );
        }
      }
      const hog = results.get("hog");
      const w = hog?.get("weir") ?? [];
      const none = hog?.get("none") ?? [];
      const ratios = none.flatMap((n, i) =>
        w[i] ? [n.worstP99 / Math.max(1e-9, w[i]!.worstP99)] : [],
      );
      const r = stats(ratios);
      if (r) {
        const round = (x: number) => Math.round(x * 10) / 10;
        figures.push({
          name: "real hog scenario: worst partition p99 latency, plain CFS ÷ weir (per repetition, median)",
          value: round(r.median),
          unit: "x",
          target: ">= 5x",
          meets: r.median >= 5,
          reps: r.n,
          range: [round(r.min), round(r.max)],
        });
      }
      notes.push(
        ...hogRatioWhy({
          cpus: os.cpus().length,
          saturationPps: probe.saturationPps,
          offeredCores: Object.values(REAL_CORES.hog),
          fixedPps: Object.values(FIXED_HOG_PPS),
          weir: w,
          none,
          ratio: r,
        }),
      );
      const [hogRun, stepRun] = scenarios;
      const sentOf = [...results.values()].flatMap((m) =>
        [...m.values()].flat().map((x) => x.sentOfScheduled * 100),
      );
      notes.push(
        `Probe (partition a's server alone, hog stopped, no manager): ${(probe.costNs / 1000).toFixed(0)} µs of CPU per request at 400 requests/s, ${Math.round(probe.saturationPps)} requests/s answered when offered more than a core (its one-thread saturation rate, "a core" in the scenarios' sizing). hog: ${hogRun!.description}. step: ${stepRun!.description}. The generator sent ${fmtStats(sentOf)} % of the packets the schedules asked for (median [min–max] over all runs).`,
        `${reps} interleaved repetitions (the policy order rotates each time); cells are median [min–max] over them. Each run lasts ${hogRun!.durationMs / 1000} s (hog) and ${stepRun!.durationMs / 1000} s (step, the step at ${stepRun!.stepAtMs! / 1000} s) per policy; capacity ${2000 - RESERVE_CPU_MILLIS}m (2 CPUs minus ${RESERVE_CPU_MILLIS}m for the load generator, which runs outside the partitions). Packet servers: ${COST_ROUNDS} SHA-256 rounds per request, single-threaded.`,
        ctx.quick
          ? `Quick mode: ${REAL_RUN_MS.quick / 1000} s runs.`
          : "Runs were 40 s until 5 repetitions made that 40 min: every loop compared still acts 16 times or more per run (12 or more after the step) and the step stays a third of the way in; a run's start and the step's transient weigh more in a shorter run's p99, for every policy alike.",
        "Latency is the load generator's round trip (send to reply) per partition; lost = no reply within 1 s (dropped at a full socket, or late).",
        BASELINES_ON_THE_TESTBED_NOTE,
        `The host was shared with other work: its 1-minute load average as each run started was ${fmtStats(loads, 1)} (median [min–max] over the ${loads.length} runs) on 2 CPUs. The testbed's parent cgroup, and a cgroup holding this process (manager and load generator), each had cpu.shares ${GROUP_CPU_SHARES} against the rest of the host; the noise that remains shows in the repetitions' ranges.`,
        describeLlc(readLlc()),
      );
    } finally {
      unisolate();
      await testbedDown(tb.stateFile);
    }
    return {
      name: "scenarios-real",
      figures,
      tables: [
        {
          title: `real testbed: served, lost, p99 latency per partition, hog CPU, each partition's CPU, cgroup writes (median [min–max] over ${reps} repetitions)`,
          columns: [
            "scenario",
            "policy",
            "served ÷ sent %",
            "lost",
            "p99 a ms",
            "p99 b ms",
            "p99 c ms",
            "hog CPU (cores)",
            "CPU a (cores)",
            "CPU b (cores)",
            "CPU c (cores)",
            "net CPU delay %",
            "hog capped % cycles",
            "cgroup writes",
            "load generator CPU (cores)",
          ],
          rows,
        },
      ],
      notes,
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
