// conservation-real's overload scenario alone, with a per-cycle trace: why does the
// importance-1 partition (a) fall below its goal? Same testbed, probe, loads, specs and run
// (conservation-run.ts runOne) as the benchmark; repetitions interleave the policies. Prints,
// per policy, a's served ÷ goal, the share of measured seconds (the generator's count) and of
// measured cycles (the manager's record: the sensor's served packets/s of each 100 ms window)
// in which a met its goal, and a's p99; writes every measured cycle of a and b (served,
// offered, CPU, PI, demand, entitlement, weight, cap, the `why`) and the generator's
// per-second replies to a JSON file.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: npx tsx bench/overload-trace.ts [--reps N] [--policies weir,static-weights,none]
//        [--measure-ms MS] [--out FILE]
// A policy may carry knobs by their config keys: weir:donorCapPeriodMs=0:goalHeadroom=0.1.
import fs from "node:fs";
import { createActuatorBackend } from "../src/actuators/index.ts";
import type { CycleRecord } from "../src/core/model.ts";
import { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  type Ctx,
  INTERVAL_MS,
  type LoadPlan,
  networkSpecs,
  OVERLOAD,
  runOne,
  timingFor,
} from "./conservation-run.ts";
import { overloadCycleMet } from "./conservation-summary.ts";
import { isMain, isolateSelf, stats } from "./harness.ts";
import { COST_ROUNDS, GROUP_CPU_SHARES, loadAvg, RESERVE_CPU_MILLIS } from "./real-common.ts";
import { SchedTrace, threadsOf } from "./sched-trace.ts";
import { probeServer } from "./server-probe.ts";

/** A placement change in a run: the cycle after which it was written, and what it placed. */
interface PlacementLog {
  afterCycle: number;
  placed: Record<string, number[] | null>;
  reason: string;
}

// Importing this module runs nothing (`weir bench report` imports every bench/*.ts): main()
// runs only when the file is run itself.
async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const reps = Number(arg("--reps") ?? 5);
  const policies = (arg("--policies") ?? "weir,static-weights,none").split(",");
  const outFile = arg("--out") ?? "/tmp/weir-overload-trace.json";
  // --sched-trace DIR: the kernel's scheduler events over each whole measured window, one file
  // per run (DIR/<rep>-<policy>.txt) with the threads' classes beside it (…​.json)
  const schedDir = arg("--sched-trace");
  const timing = { ...timingFor(false) };
  timing.measureMs = Number(arg("--measure-ms") ?? timing.overloadMeasureMs);

  interface TraceRow {
    cycle: number;
    id: string;
    served: number;
    offered: number;
    cores: number;
    delay: number | null;
    throttled: number;
    pi: number | null;
    demand: number | null;
    entitlement: number | null;
    weight: number | null;
    cap: number | null;
    capReason: string | null;
    why: string;
  }

  const prefix = `wo${process.pid % 100000}`;
  const load0 = loadAvg();
  const started = new Date();
  const tb = await testbedUp({
    prefix,
    partitions: ["a", "b", "c"].map((name) => ({ name })),
    hogs: [{ name: "hog", cpus: 2 }],
    costRounds: COST_ROUNDS,
    maxLifetimeMs: reps * policies.length * (timing.warmupMs + timing.measureMs + 2000) + 600_000,
    groupCpuShares: GROUP_CPU_SHARES,
  });
  const hostCpu = new HeldHostCpu(defaultRoots.procfs);
  let unisolate = () => {};
  const runs: Array<{
    policy: string;
    rep: number;
    goal: number;
    servedOverGoal: number;
    secondsMet: number;
    cyclesMet: number;
    p99Ms: number;
    perSecond: number[];
    cycles: TraceRow[];
    placements: PlacementLog[];
  }> = [];
  let c: Ctx | null = null;
  try {
    unisolate = isolateSelf(`${prefix}/gen`, GROUP_CPU_SHARES);
    const capacity = 2000 - RESERVE_CPU_MILLIS;
    c = {
      tb,
      capacity,
      backend: createActuatorBackend("cgroup", { roots: defaultRoots, now: Date.now }),
      hostCpu,
      timing,
      trace: schedDir ? new SchedTrace(`${prefix}-sched`, undefined, 131_072) : null,
      traceMs: timing.measureMs - 1000,
    };
    if (schedDir) fs.mkdirSync(schedDir, { recursive: true });
    const hogPid = tb.hogs[0]!.pid;
    if (!hogPid) throw new Error("overload-trace: the testbed's hog has no pid");
    const probe = await probeServer(tb, hogPid);
    const pps = (cores: number) => Math.max(20, Math.round(cores * probe.saturationPps));
    const goal = pps(OVERLOAD.a.goalCores);
    const specs = networkSpecs(tb, capacity, true).map((s) => {
      const o = OVERLOAD[s.id as keyof typeof OVERLOAD];
      return o?.goalCores != null ? { ...s, goalPacketsPerSec: pps(o.goalCores) } : s;
    });
    const load: LoadPlan = {
      kind: "udp",
      schedules: Object.fromEntries(
        Object.entries(OVERLOAD).map(([k, v]) => [
          k,
          { kind: "constant", pps: pps(v.offeredCores) },
        ]),
      ),
    };
    console.error(
      `probe: ${(probe.costNs / 1e3).toFixed(0)} µs per request, saturation ${Math.round(probe.saturationPps)}/s; a offered ${pps(OVERLOAD.a.offeredCores)}/s, goal ${goal}/s`,
    );
    for (let rep = 0; rep < reps; rep++) {
      const order = policies.map((_, i) => policies[(i + rep) % policies.length]!);
      for (const policy of order) {
        const records: CycleRecord[] = [];
        // placement changes, each with the cycle after which it was written
        const placements: PlacementLog[] = [];
        const [policyName, ...knobs] = policy.split(":");
        const policySettings = Object.fromEntries(
          knobs.map((k) => {
            const [key, v] = k.split("=");
            return [key, Number(v)];
          }),
        );
        const r = await runOne(c, {
          scenario: "overload",
          policy: policyName!,
          ...(knobs.length > 0 ? { policySettings } : {}),
          rep,
          specs,
          load,
          measureMs: timing.measureMs,
          hogStopped: false,
          onRecord: (x) => records.push(x),
          onSchedTrace: (text) => {
            const base = `${schedDir}/${rep + 1}-${policy.replaceAll(/[^\w-]/g, "_")}`;
            fs.writeFileSync(`${base}.txt`, text);
            fs.writeFileSync(
              `${base}.json`,
              `${JSON.stringify({
                servers: Object.fromEntries(
                  tb.partitions.map((p) => [p.name, threadsOf(p.serverPid)]),
                ),
                hog: threadsOf(tb.hogs[0]?.pid),
                generator: threadsOf(process.pid),
                cycles: records.map((x) => [x.cycle, x.startedAtMs]),
                // the clocks now: epoch ms and CLOCK_MONOTONIC s (tracefs' default clock is close to it)
                clocks: [Date.now(), Number(process.hrtime.bigint()) / 1e9],
              })}\n`,
            );
          },
          onPlacementChange: (ch) =>
            placements.push({
              afterCycle: records.at(-1)?.cycle ?? -1,
              placed: ch.placed,
              reason: ch.reason,
            }),
        });
        // The warm-up's cycles, then those the benchmark counts (runOne's cycleServed; the
        // measured ones begin at cycle `first` + 1).
        const counted = r.cycleServed?.a?.length ?? 0;
        const first = Math.round(timing.warmupMs / INTERVAL_MS);
        const measured = records.slice(0, first + counted + 2);
        const cycles: TraceRow[] = [];
        for (const rec of measured)
          for (const p of rec.partitions) {
            if (p.id !== "a" && p.id !== "b") continue;
            const t = p.throughput;
            cycles.push({
              cycle: rec.cycle,
              id: p.id,
              served: t?.servedPacketsPerSec ?? Number.NaN,
              offered: t?.offeredPacketsPerSec ?? Number.NaN,
              cores: t?.cpuCores ?? Number.NaN,
              delay: t?.cpuDelayFraction ?? null,
              throttled: t?.throttledFraction ?? Number.NaN,
              pi: p.decision?.performanceIndex ?? null,
              demand: p.decision?.demandCpuMillis ?? null,
              entitlement: p.directive?.cpuMillis ?? null,
              weight: p.directive?.weight ?? null,
              cap:
                p.directive && Number.isFinite(p.directive.capCpuMillis)
                  ? p.directive.capCpuMillis
                  : null,
              capReason: p.directive?.capReason ?? null,
              why: p.decision?.why ?? "",
            });
          }
        const perSecond = r.perSecond?.a ?? [];
        const row = {
          policy,
          rep,
          goal,
          servedOverGoal:
            perSecond.reduce((s, x) => s + x, 0) / Math.max(1, perSecond.length) / goal,
          secondsMet: perSecond.filter((x) => x >= goal).length / Math.max(1, perSecond.length),
          cyclesMet: overloadCycleMet(r.cycleServed?.a ?? [], goal),
          p99Ms: r.p99Ms.a ?? Number.NaN,
          perSecond,
          cycles,
          placements,
        };
        runs.push(row);
        console.error(
          `rep ${rep + 1} ${policy}: a served ${row.servedOverGoal.toFixed(3)}× goal, seconds met ${(row.secondsMet * 100).toFixed(0)} %, cycles met ${(row.cyclesMet * 100).toFixed(0)} %, p99 ${row.p99Ms.toFixed(1)} ms; per second ${perSecond.join(" ")}; placement changes ${placements.length}${placements.length > 0 ? ` (after cycles ${placements.map((p) => p.afterCycle).join(", ")})` : ""}`,
        );
        fs.writeFileSync(outFile, `${JSON.stringify(runs)}\n`);
      }
    }
  } finally {
    hostCpu.close();
    c?.trace?.close();
    unisolate();
    await testbedDown(tb.stateFile);
  }
  const fmt = (xs: number[], f: (x: number) => string) => {
    const s = stats(xs);
    return s ? `${f(s.median)} [${f(s.min)}–${f(s.max)}]` : "n/a";
  };
  console.log(
    `overload, ${reps} reps, ${timing.measureMs / 1000} s measured each; ${started.toISOString()} → ${new Date().toISOString()}; load ${load0} → ${loadAvg()}`,
  );
  for (const policy of policies) {
    const rs = runs.filter((r) => r.policy === policy);
    console.log(
      `${policy}: a served ÷ goal ${fmt(
        rs.map((r) => r.servedOverGoal),
        (x) => x.toFixed(3),
      )}; seconds met ${fmt(
        rs.map((r) => r.secondsMet * 100),
        (x) => x.toFixed(0),
      )} %; cycles met ${fmt(
        rs.map((r) => r.cyclesMet * 100),
        (x) => x.toFixed(0),
      )} %; p99 ${fmt(
        rs.map((r) => r.p99Ms),
        (x) => x.toFixed(1),
      )} ms`,
    );
  }
  console.log(`trace: ${outFile}`);
}

if (isMain(import.meta.url)) await main();
