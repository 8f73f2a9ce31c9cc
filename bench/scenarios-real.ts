// The small scenarios on the real testbed: netns + veth + cgroup v1 + a SHA-256 UDP packet
// server per partition and a batch hog (src/testbed), real UDP load (src/testbed/load.ts),
// and weir's real Manager with the real sensors and the cgroup actuator, once per policy.
// The oracle is not run here: the real host does not say in advance what a packet costs.
// Needs root. Everything is created under a unique prefix and removed afterwards.
// Run: weir bench scenarios-real [--quick]   or   npx tsx bench/scenarios-real.ts [--json] [--quick]
import { createActuatorBackend } from "../src/actuators/index.ts";
import { ErrorCodes, WeirError } from "../src/core/errors.ts";
import type { CycleRecord, PartitionSpec } from "../src/core/model.ts";
import type { Policy } from "../src/policy/types.ts";
import { defaultRoots } from "../src/sensors/types.ts";
import { policyFactories } from "../src/sim/policies.ts";
import { runLoad } from "../src/testbed/load.ts";
import type { Schedule } from "../src/testbed/schedule.ts";
import { testbedDown, testbedUp } from "../src/testbed/testbed.ts";
import type { BenchFigure, Benchmark } from "./harness.ts";
import { isMain, isolateSelf, readUsageNs, runStandalone } from "./harness.ts";
import { testbedManager } from "./testbed-manager.ts";

/** SHA-256 rounds per request: ~0.25-0.3 ms of CPU (about 3,500 packets per CPU-second, like the sim). */
const COST_ROUNDS = 40;
/** Kept back for the load generator, which runs on the same 2 CPUs outside the partitions. */
const RESERVE_CPU_MILLIS = 300;
/** cpu.shares of the whole testbed against everything else on the host (1024 = one ordinary process). */
const GROUP_CPU_SHARES = 16_384;

interface RealScenario {
  name: string;
  description: string;
  durationMs: number;
  schedules: Record<string, Schedule>;
  stepAtMs?: number;
}

function realScenarios(quick: boolean): RealScenario[] {
  const d = quick ? 12_000 : 40_000;
  return [
    {
      name: "hog",
      description: "steady 600, 1,000, 2,200 packets/s with a 2-thread batch hog",
      durationMs: d,
      schedules: {
        a: { kind: "constant", pps: 600 },
        b: { kind: "constant", pps: 1000 },
        c: { kind: "constant", pps: 2200 },
      },
    },
    {
      name: "step",
      description:
        "a steps 400 -> 2,500 packets/s a third of the way in; b, c at 600; a 2-thread batch hog",
      durationMs: d,
      stepAtMs: Math.round(d / 3),
      schedules: {
        a: { kind: "step", fromPps: 400, toPps: 2500, atMs: Math.round(d / 3) },
        b: { kind: "constant", pps: 600 },
        c: { kind: "constant", pps: 600 },
      },
    },
  ];
}

const REAL_POLICIES = ["weir", "none", "static", "vpa-style", "koordinator-style"];

export const bench: Benchmark = {
  name: "scenarios-real",
  description:
    "the hog and step scenarios on the real testbed (netns, veth, cgroup v1, UDP packet servers, a batch hog) for weir and the baselines (root)",
  async run(ctx) {
    if (process.getuid?.() !== 0)
      throw new WeirError(
        ErrorCodes.NOT_ROOT,
        "bench scenarios-real: needs root (namespaces, veths, cgroups)",
      );
    const scenarios = realScenarios(ctx.quick);
    const totalMs = scenarios.reduce((s, x) => s + x.durationMs, 0) * REAL_POLICIES.length;
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
    const rows: Array<Array<string | number>> = [];
    const figures: BenchFigure[] = [];
    const notes: string[] = [];
    let unisolate = () => {};
    try {
      unisolate = isolateSelf(`${prefix}-gen`, GROUP_CPU_SHARES);
      const capacity = 2000 - RESERVE_CPU_MILLIS;
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
      const results = new Map<
        string,
        Map<string, { p99: number; served: number; hogCores: number }>
      >();
      for (const sc of scenarios) {
        for (const policyName of REAL_POLICIES) {
          const factory = policyFactories.find((p) => p.name === policyName)!;
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
            oracle: {
              intervalMs: 100,
              peakOfferedPacketsPerSec: () => {
                throw new Error("no oracle on the real testbed");
              },
              costNsPerPacket: () => {
                throw new Error("no oracle on the real testbed");
              },
            },
          });
          const manager = testbedManager(tb, specs, {
            capacityCpuMillis: capacity,
            intervalMs: 100,
            policy,
            now,
            backend,
          });
          let writes = 0;
          const records: CycleRecord[] = [];
          manager.subscribe((r) => {
            for (const p of r.partitions) writes += p.written.length;
            records.push(r);
          });
          const ac = new AbortController();
          const loop = manager.start(ac.signal);
          const hogDirs = tb.hogs[0]!.cgroupDirs;
          const hog0 = readUsageNs(hogDirs);
          const label = `${sc.name} / ${policyName}`;
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
              maxPackets: Math.ceil((sc.durationMs / 1000) * 6000),
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
          doneMs += sc.durationMs;
          const p99s = load.targets.map((t) => t.latency.p99Ms ?? Number.NaN);
          const served = load.totals.answered / Math.max(1, load.totals.sent);
          const worstP99 = Math.max(...p99s);
          if (!results.has(sc.name)) results.set(sc.name, new Map());
          results.get(sc.name)!.set(policyName, { p99: worstP99, served, hogCores });
          rows.push([
            sc.name,
            factory.label,
            Math.round(served * 1000) / 10,
            load.totals.lost,
            ...p99s.map((x) => Math.round(x * 10) / 10),
            Math.round(hogCores * 100) / 100,
            writes,
            Math.round(load.generator.cpuCores * 100) / 100,
          ]);
        }
      }
      for (const [scName, byPolicy] of results) {
        const w = byPolicy.get("weir");
        if (!w) continue;
        for (const [policyName, r] of byPolicy) {
          if (policyName === "weir") continue;
          const wins: string[] = [];
          if (r.served - w.served > 0.005)
            wins.push(
              `served ${(r.served * 100).toFixed(1)} % vs weir's ${(w.served * 100).toFixed(1)} %`,
            );
          if (r.p99 < 0.8 * w.p99)
            wins.push(
              `worst-partition p99 ${r.p99.toFixed(1)} ms vs weir's ${w.p99.toFixed(1)} ms`,
            );
          if (wins.length > 0)
            notes.push(
              `weir loses on the real testbed (${scName}) to ${policyFactories.find((p) => p.name === policyName)?.label}: ${wins.join("; ")}.`,
            );
        }
      }
      const hog = results.get("hog");
      const w = hog?.get("weir");
      const none = hog?.get("none");
      if (w && none)
        figures.push({
          name: "real hog scenario: worst partition p99 latency, plain CFS ÷ weir",
          value: Math.round((none.p99 / w.p99) * 10) / 10,
          unit: "x",
          target: ">= 5x",
          meets: none.p99 / w.p99 >= 5,
        });
      notes.push(
        `Each scenario lasts ${scenarios[0]!.durationMs / 1000} s per policy; capacity ${2000 - RESERVE_CPU_MILLIS}m (2 CPUs minus ${RESERVE_CPU_MILLIS}m for the load generator, which runs outside the partitions). Packet servers: ${COST_ROUNDS} SHA-256 rounds per request, single-threaded.`,
        "Latency is the load generator's round trip (send to reply) per partition; lost = no reply within 1 s (dropped at a full socket, or late).",
        `The host was shared with other work during the run. The testbed's parent cgroup, and a cgroup holding this process (manager and load generator), each had cpu.shares ${GROUP_CPU_SHARES} against it; some noise remains, and the simulated scenarios are the controlled comparison.`,
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
          title: "real testbed: served, lost, p99 latency per partition, hog CPU, cgroup writes",
          columns: [
            "scenario",
            "policy",
            "served ÷ sent %",
            "lost",
            "p99 a ms",
            "p99 b ms",
            "p99 c ms",
            "hog CPU (cores)",
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
