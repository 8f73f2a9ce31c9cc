// The same balance scenario on two kinds of partitions, side by side: (1) netns + veth
// partitions counted on their host-side veth (and the server's /proc/<pid>/net), (2)
// host-network partitions — servers on 127.0.0.1 in their own cgroups, no netns, no veth —
// counted by eBPF on their cgroups (`packets: bpf`). The scenario is reaction-real's: a's
// traffic steps from 5 % to 90 % of what its server answers on one CPU while b and c stay at
// 10 % and a 2-thread batch hog runs; the manager is what `weir run` builds from a config
// (bench/testbed-manager.ts). Both testbeds are up for the whole run and the repetitions
// alternate between them (veth, bpf, veth, ...), the other testbed's hog stopped
// (SIGSTOP by its pid) meanwhile, so a change in the shared machine's load hits both alike.
// Needs root and a cgroup2 mount. Everything is created under unique prefixes and removed.
// Run: weir bench balance-bpf [--quick] [--reps N]  or  npx tsx bench/balance-bpf.ts [...]
import { createActuatorBackend } from "../src/actuators/index.ts";
import { HeldHostCpu } from "../src/sensors/host-cpu.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import type { TestbedState } from "../src/testbed/state.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import { type Ctx, networkSpecs, type RunOutcome, runOne, timingFor } from "./conservation-run.ts";
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
import { STEP_CORES, stepLoad } from "./reaction-real.ts";
import {
  COST_ROUNDS,
  epochNow,
  GROUP_CPU_SHARES,
  loadAvg,
  RESERVE_CPU_MILLIS,
} from "./real-common.ts";
import { probeServer } from "./server-probe.ts";

const MODES = ["veth", "bpf"] as const;
type Mode = (typeof MODES)[number];
const LABEL: Record<Mode, string> = {
  veth: "netns + veth, counted on the veth",
  bpf: "host network, counted by eBPF",
};

const median = (xs: number[]): number => stats(xs)?.median ?? Number.NaN;
const range = (xs: number[], digits: number, scale = 1): string => fmtStats(xs, digits, scale);

export const bench: Benchmark = {
  name: "balance-bpf",
  description:
    "the reaction-real step scenario on netns + veth partitions and on host-network partitions counted by eBPF, alternating: served ÷ offered, reaction to the step, a's entitlement before/after (root)",
  async run(ctx) {
    const reps = realBenchReps("balance-bpf", ctx);
    const timing = timingFor(ctx.quick);
    const load0 = loadAvg();
    const base = `wb${process.pid % 100000}`;
    const tbs: Partial<Record<Mode, TestbedState>> = {};
    const outcomes: Record<Mode, RunOutcome[]> = { veth: [], bpf: [] };
    const hostCpu = new HeldHostCpu(defaultRoots.procfs);
    let unisolate = () => {};
    let sizing = "";
    const stopped = new Set<number>();
    const signal = (pid: number, sig: "SIGSTOP" | "SIGCONT") => {
      process.kill(pid, sig);
      if (sig === "SIGSTOP") stopped.add(pid);
      else stopped.delete(pid);
    };
    try {
      for (const mode of MODES)
        tbs[mode] = await testbedUp({
          prefix: `${base}${mode === "bpf" ? "h" : "v"}`,
          hostNetwork: mode === "bpf",
          partitions: ["a", "b", "c"].map((name) => ({ name })),
          hogs: [{ name: "hog", cpus: 2 }],
          costRounds: COST_ROUNDS,
          maxLifetimeMs: reps * 2 * 20_000 + 10 * 60_000,
          groupCpuShares: GROUP_CPU_SHARES,
        });
      const hogOf = (m: Mode): number => {
        const pid = tbs[m]!.hogs[0]!.pid;
        if (!pid) throw new Error(`balance-bpf: the ${m} testbed's hog has no pid`);
        return pid;
      };
      unisolate = isolateSelf(`${base}-gen`, GROUP_CPU_SHARES);
      const capacity = 2000 - RESERVE_CPU_MILLIS;
      const backend = createActuatorBackend("cgroup", { roots: defaultRoots, now: epochNow });
      const ctxOf = (m: Mode): Ctx => ({ tb: tbs[m]!, capacity, backend, hostCpu, timing });
      // one probe (the veth testbed's a, the bpf testbed's hog stopped): the same rates for both
      ctx.progress(0, "probing the server");
      signal(hogOf("bpf"), "SIGSTOP");
      const probe = await probeServer(tbs.veth!, hogOf("veth"));
      signal(hogOf("bpf"), "SIGCONT");
      const pps = (cores: number) => Math.max(20, Math.round(cores * probe.saturationPps));
      sizing = `Probe: ${Math.round(probe.saturationPps)} requests/s answered by one server alone (the veth testbed's a; same server, cost ${COST_ROUNDS} SHA-256 rounds a request, in both). Step: a ${pps(STEP_CORES.from)} -> ${pps(STEP_CORES.to)} packets/s at ${timing.stepAtMs / 1000} s of a ${(timing.warmupMs + timing.measureMs) / 1000} s run, b and c ${pps(STEP_CORES.others)} packets/s, the 2-thread hog running; capacity ${capacity}m (equal share of the 3 network partitions ${Math.round(capacity / 3)}m).`;
      for (let rep = 0; rep < reps; rep++)
        for (const [i, mode] of MODES.entries()) {
          const other = MODES[1 - i]!;
          ctx.progress((rep * 2 + i) / (reps * 2), `rep ${rep + 1}/${reps} ${mode}`);
          signal(hogOf(other), "SIGSTOP");
          try {
            outcomes[mode].push(
              await runOne(ctxOf(mode), {
                scenario: "step",
                policy: "weir",
                rep,
                specs: networkSpecs(tbs[mode]!, capacity, false),
                load: stepLoad(pps, timing.stepAtMs),
                measureMs: timing.measureMs,
                hogStopped: false,
              }),
            );
          } finally {
            signal(hogOf(other), "SIGCONT");
          }
        }
    } finally {
      for (const pid of stopped) process.kill(pid, "SIGCONT");
      hostCpu.close();
      unisolate();
      for (const tb of Object.values(tbs)) await testbedDown(tb.stateFile);
    }
    const col = (m: Mode) => {
      const o = outcomes[m];
      const reaction = o.map((x) => x.reaction?.ms ?? Number.NaN);
      return {
        o,
        reaction,
        reached: reaction.filter(Number.isFinite).length,
        servedA: o.map((x) => x.served.a ?? Number.NaN),
        servedBc: o.map((x) => ((x.served.b ?? Number.NaN) + (x.served.c ?? Number.NaN)) / 2),
        before: o.map((x) => x.reaction?.fromMillis ?? Number.NaN),
        after: o.map((x) => x.reaction?.toMillis ?? Number.NaN),
        p99: o.map((x) => x.p99Ms.a ?? Number.NaN),
        hog: o.map((x) => x.hogCores),
        writes: o.map((x) => x.writesPerPartitionSec),
      };
    };
    const c = { veth: col("veth"), bpf: col("bpf") };
    const figures = MODES.flatMap((m) => [
      {
        name: `${LABEL[m]}: a served ÷ offered over the measured window, step included`,
        ...repeated(c[m].servedA, 1, 100),
        unit: "%",
      },
      {
        name: `${LABEL[m]}: load step -> 90 % of new entitlement applied (${c[m].reached} of ${reps} repetitions got there)`,
        ...repeated(c[m].reaction, 0),
        unit: "ms",
        target: "<= 300 ms",
        meets: c[m].reached === reps && median(c[m].reaction) <= 300,
      },
    ]);
    return {
      name: "balance-bpf",
      figures,
      tables: [
        {
          title: "side by side (median [min–max] over the repetitions)",
          columns: [
            "partitions",
            "a served %",
            "b, c served %",
            "reaction (ms)",
            "a's entitlement before (m)",
            "after (m)",
            "a p99 ms",
            "hog CPU (cores)",
            "writes /partition/s",
          ],
          rows: MODES.map((m) => [
            LABEL[m],
            range(c[m].servedA, 1, 100),
            range(c[m].servedBc, 1, 100),
            range(c[m].reaction, 0),
            range(c[m].before, 0),
            range(c[m].after, 0),
            range(c[m].p99, 1),
            range(c[m].hog, 2),
            range(c[m].writes, 2),
          ]),
        },
        {
          title: "per repetition (in the order run: veth then bpf in each)",
          columns: [
            "repetition",
            "partitions",
            "a before (m)",
            "after (m)",
            "reaction (ms)",
            "a served %",
            "a p99 ms",
            "hog CPU (cores)",
          ],
          rows: Array.from({ length: reps }, (_, rep) =>
            MODES.map((m) => {
              const o = c[m].o[rep]!;
              return [
                rep + 1,
                m,
                o.reaction ? Math.round(o.reaction.fromMillis) : "–",
                o.reaction ? Math.round(o.reaction.toMillis) : "–",
                o.reaction?.ms == null ? "not reached" : Math.round(o.reaction.ms),
                Math.round((o.served.a ?? Number.NaN) * 1000) / 10,
                Math.round((o.p99Ms.a ?? Number.NaN) * 10) / 10,
                Math.round(o.hogCores * 100) / 100,
              ];
            }),
          ).flat(),
        },
      ],
      notes: [
        sizing,
        "veth: each partition a network namespace with a veth pair (198.18.0.0/15), weir counting the host-side veth (`interfaces`) and the server's namespace (`pid`). bpf: the same server on 127.0.0.1 at a port of its own, in its own cgroup, weir counting with `packets: bpf` (eBPF on the cgroup's inet ingress/egress hooks). Same manager, policy, cgroup backend, hog and load generator (outside every partition).",
        `Reaction: from the step (load start + ${timing.stepAtMs} ms) to the end of the first cycle whose directive for a covered 90 % of the way from its median entitlement in the second before the step to its median over the last 1.5 s; 100 ms cycles. "Allocations following traffic": a's entitlement before and after.`,
        `Load average (1, 5, 15 min): ${load0} at the start, ${loadAvg()} at the end (2 CPUs, shared with other work).`,
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
