// The cap experiment of issue 9, by hand: conservation-real's UDP conserve load, a no-hog
// reference (plain CFS, hog SIGSTOPped) then each variant, interleaved (order rotated per
// repetition); one JSON line per run (worst p99 ÷ the same repetition's no-hog p99, host idle,
// hog cores, the scheduler trace's servers' p99 wait, share of it beside a hog-only CPU, pulls).
// Needs root and the bench lock.
// Run: flock /tmp/weir-bench.lock npx tsx bench/hogcap-ab.ts REPS VARIANT...
//   VARIANT: weir | sw (static weights) | sw:<capMillis>:<periodUs>:<burstFraction> (static
//   weights with the hog hard-capped by hand: runOne's hogCap)
import fs from "node:fs";
import { createActuatorBackend } from "../src/actuators/index.ts";
import { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import {
  CONSERVE_CORES,
  type Ctx,
  networkSpecs,
  type RunOutcome,
  runOne,
  timingFor,
} from "./conservation-run.ts";
import { isMain, isolateSelf } from "./harness.ts";
import {
  COST_ROUNDS,
  epochNow,
  GROUP_CPU_SHARES,
  loadAvg,
  RESERVE_CPU_MILLIS,
} from "./real-common.ts";
import { SchedTrace } from "./sched-trace.ts";
import { probeServer } from "./server-probe.ts";

async function main(): Promise<void> {
  const reps = Number(process.argv[2] ?? 3);
  const variants = process.argv.slice(3);
  const prefix = `ux${process.pid % 100000}`;
  const timing = timingFor(false);
  const tb = await testbedUp({
    prefix,
    partitions: ["a", "b", "c"].map((name) => ({ name })),
    hogs: [{ name: "hog", cpus: 2 }],
    costRounds: COST_ROUNDS,
    maxLifetimeMs: 20 * 60_000,
    groupCpuShares: GROUP_CPU_SHARES,
  });
  const hostCpu = new HeldHostCpu(defaultRoots.procfs);
  let trace: SchedTrace | null = null;
  const unisolate = isolateSelf(`${prefix}/gen`, GROUP_CPU_SHARES);
  const rows: Array<{ v: string; rep: number; o: RunOutcome }> = [];
  console.log("load", loadAvg(), new Date().toISOString());
  try {
    trace = new SchedTrace(`weir-${prefix}`);
    const c: Ctx = {
      tb,
      capacity: 2000 - RESERVE_CPU_MILLIS,
      backend: createActuatorBackend("cgroup", { roots: defaultRoots, now: epochNow }),
      hostCpu,
      timing,
      trace,
    };
    const probe = await probeServer(tb, tb.hogs[0]!.pid!);
    const pps = (cores: number) => Math.max(20, Math.round(cores * probe.saturationPps));
    console.log("probe", probe);
    const specs = networkSpecs(tb, c.capacity, false);
    const load = {
      kind: "udp" as const,
      schedules: Object.fromEntries(
        Object.entries(CONSERVE_CORES).map(([k, v]) => [
          k,
          { kind: "constant" as const, pps: pps(v) },
        ]),
      ),
    };
    for (let rep = 0; rep < reps; rep++) {
      const ref = await runOne(c, {
        scenario: "ref-udp",
        policy: "none",
        rep,
        specs,
        load,
        measureMs: timing.measureMs,
        hogStopped: true,
      });
      rows.push({ v: "ref", rep, o: ref });
      const order = variants.map((_, i) => variants[(i + rep) % variants.length]!);
      for (const v of order) {
        const [pol, capS, perS, burstS] = v.split(":");
        const o = await runOne(c, {
          scenario: capS ? "hogcap-udp" : "conserve",
          policy: pol === "sw" ? "static-weights" : pol!,
          rep,
          specs,
          load,
          measureMs: timing.measureMs,
          hogStopped: false,
          ...(capS
            ? {
                hogCap: {
                  capMillis: Number(capS),
                  periodUs: Number(perS),
                  burstFraction: Number(burstS ?? 0),
                },
              }
            : {}),
        });
        rows.push({ v, rep, o });
        const ratio = Math.max(...["a", "b", "c"].map((n) => o.p99Ms[n]! / ref.p99Ms[n]!));
        const sw = o.schedWait;
        console.log(
          JSON.stringify({
            rep,
            v,
            ratio: +ratio.toFixed(2),
            p99: o.p99Ms,
            refP99: ref.p99Ms,
            idle: +(o.hostIdle * 100).toFixed(1),
            hog: +o.hogCores.toFixed(2),
            served: Math.min(...Object.values(o.served)),
            wait: sw
              ? {
                  msPerS: +sw.waitMsPerSec.toFixed(0),
                  p99Us: Math.round(sw.p99WaitUs),
                  otherHog: +sw.otherCpu.hog.toFixed(2),
                  otherIdle: +sw.otherCpu.idle.toFixed(2),
                  pulledPerS: +((sw.pulls * 1000) / sw.spanMs).toFixed(1),
                }
              : null,
          }),
        );
      }
    }
  } finally {
    trace?.close();
    hostCpu.close();
    unisolate();
    await testbedDown(tb.stateFile);
    fs.writeFileSync(`/tmp/weir-hogcap-ab-${Date.now()}.json`, JSON.stringify(rows));
    console.log("load", loadAvg(), new Date().toISOString());
  }
}

if (isMain(import.meta.url)) await main();
