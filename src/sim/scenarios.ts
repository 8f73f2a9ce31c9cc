// The benchmark scenarios. Small ones: 3 network partitions and a batch hog on 2 CPUs, like
// this host and `weir demo`. Scale ones: 1,000 and 10,000 partitions on proportionally more
// CPUs. Velocities (packets per CPU-second) sit in the 2,600-4,700 range measured on these VMs
// and drift ±30 % together (docs/measured-facts.md). Every number here is an input, not a result.
import { constant, diurnal, flashCrowd, type LoadSchedule, ramp, square, step } from "./load.ts";
import { createRng } from "./rng.ts";
import type { Scenario, ScenarioPartition } from "./run.ts";

// Reserve 0, as weir's config default: the sim has no host processes to keep CPU for.
const SMALL = { cpus: 2, reserveCpuMillis: 0, intervalMs: 100, tickMs: 1 } as const;

const net = (
  id: string,
  load: LoadSchedule,
  velocityPacketsPerCpuSec = 3500,
): ScenarioPartition => ({
  id,
  kind: "network",
  load,
  velocityPacketsPerCpuSec,
});
const hog = (id = "hog"): ScenarioPartition => ({ id, kind: "batch" });

/** The small scenarios. `quick` shortens them (CI smoke), keeping their shape. */
export function smallScenarios(quick = false): Scenario[] {
  const k = quick ? 0.5 : 1; // time scale
  const s = (ms: number) => Math.round(ms * k);
  return [
    {
      ...SMALL,
      name: "step",
      description:
        "load step: a goes 500 -> 3,500 packets/s (0.14 -> 1.0 CPU) at 30 s; b, c steady at 700; one batch hog",
      durationMs: s(90_000),
      seed: 11,
      partitions: [
        net("a", step(500, 3500, s(30_000))),
        net("b", constant(700), 3000),
        net("c", constant(700), 4000),
        hog(),
      ],
      reaction: { partition: "a", atMs: s(30_000), settleFromMs: s(32_000), untilMs: s(40_000) },
    },
    {
      ...SMALL,
      name: "ramp",
      description:
        "ramp: a climbs 300 -> 4,000 packets/s between 20 s and 80 s; b, c steady at 700; one batch hog",
      durationMs: s(100_000),
      seed: 12,
      partitions: [
        net("a", ramp(300, 4000, s(20_000), s(80_000))),
        net("b", constant(700), 3000),
        net("c", constant(700), 4000),
        hog(),
      ],
    },
    {
      ...SMALL,
      name: "square",
      description:
        "square wave: a and b swap 400 <-> 3,000 packets/s every 10 s (opposite phase); c steady at 700; one batch hog",
      durationMs: s(100_000),
      seed: 13,
      partitions: [
        net("a", square(400, 3000, s(20_000))),
        net("b", square(400, 3000, s(20_000), 0.5), 3000),
        net("c", constant(700), 4000),
        hog(),
      ],
    },
    {
      ...SMALL,
      name: "flash",
      description:
        "flash crowd: a jumps 300 -> 5,000 packets/s at 30 s and decays back (time constant 15 s); b, c at 700; one batch hog",
      durationMs: s(90_000),
      seed: 14,
      partitions: [
        net("a", flashCrowd(300, 5000, s(30_000), s(15_000))),
        net("b", constant(700), 3000),
        net("c", constant(700), 4000),
        hog(),
      ],
      reaction: { partition: "a", atMs: s(30_000), settleFromMs: s(31_000), untilMs: s(33_000) },
    },
    {
      ...SMALL,
      name: "diurnal",
      description:
        "diurnal trace: a day of web traffic (trough 200, peak 2,500 packets/s) compressed into 120 s, three partitions 8 h apart; one batch hog",
      durationMs: s(120_000),
      seed: 15,
      partitions: [
        net("a", diurnal(200, 2500, s(120_000), 0)),
        net("b", diurnal(200, 2500, s(120_000), 8), 3000),
        net("c", diurnal(200, 2500, s(120_000), 16), 4000),
        hog(),
      ],
    },
    {
      ...SMALL,
      name: "hog",
      description:
        "network partitions with a batch hog: steady 800, 1,200, 2,800 packets/s (0.23, 0.34, 0.8 CPU); c needs more than an equal CFS share",
      durationMs: s(60_000),
      seed: 16,
      partitions: [
        net("a", constant(800)),
        net("b", constant(1200)),
        net("c", constant(2800)),
        hog(),
      ],
    },
    {
      ...SMALL,
      name: "long-step",
      description:
        "20 minutes, long enough for policies on a 1-minute loop (VPA): a goes 300 -> 3,200 packets/s (0.09 -> 0.91 CPU) at 5 min and back at 14 min; b, c steady at 700; one batch hog",
      durationMs: s(1_200_000),
      seed: 18,
      partitions: [
        net("a", (t) => (t >= s(300_000) && t < s(840_000) ? 3200 : 300)),
        net("b", constant(700), 3000),
        net("c", constant(700), 4000),
        hog(),
      ],
      reaction: {
        partition: "a",
        atMs: s(300_000),
        settleFromMs: s(600_000),
        untilMs: s(840_000),
      },
    },
    {
      ...SMALL,
      name: "step-nohog",
      description:
        "the load step without a batch hog: network partitions only, where plain CFS (work-conserving, uncapped) is hard to beat",
      durationMs: s(90_000),
      seed: 17,
      partitions: [
        net("a", step(500, 3500, s(30_000))),
        net("b", constant(700), 3000),
        net("c", constant(700), 4000),
      ],
      reaction: { partition: "a", atMs: s(30_000), settleFromMs: s(32_000), untilMs: s(40_000) },
    },
  ];
}

/**
 * `partitions` partitions, 90 % network and 10 % batch hogs, on partitions / 10 CPUs.
 * Each network partition offers a steady 100-250 packets/s; every tenth one triples at
 * mid-run. The network partitions need about 55 % of the CPUs at nominal cost (70 % at +30 %
 * drift), so a good allocation exists; the hogs take the rest. Coarser tick (latency
 * resolution = the tick).
 */
export function scaleScenario(partitions: number, quick = false): Scenario {
  const rng = createRng(1000 + partitions);
  const big = partitions >= 5000;
  const durationMs = quick ? (big ? 3_000 : 5_000) : big ? 10_000 : 20_000;
  const cpus = Math.max(2, Math.round(partitions / 10));
  const list: ScenarioPartition[] = [];
  for (let i = 0; i < partitions; i++) {
    const id = `p${String(i).padStart(5, "0")}`;
    if (i % 10 === 9) {
      list.push({ id, kind: "batch", parallelism: 2 });
      continue;
    }
    const base = Math.round(100 + rng.next() * 150);
    const velocity = Math.round(2800 + rng.next() * 1600);
    const load = i % 10 === 0 ? step(base, base * 3, durationMs / 2) : constant(base);
    list.push({ id, kind: "network", load, velocityPacketsPerCpuSec: velocity, parallelism: 2 });
  }
  return {
    name: `scale-${partitions}`,
    description: `${partitions} partitions (90 % network at 100-250 packets/s, every tenth tripling at mid-run; 10 % batch hogs) on ${cpus} CPUs`,
    cpus,
    reserveCpuMillis: 0,
    durationMs,
    intervalMs: 100,
    tickMs: big ? 10 : 5,
    seed: partitions,
    partitions: list,
  };
}

export function scenarioByName(name: string, quick = false): Scenario | undefined {
  const m = /^scale-(\d+)$/.exec(name);
  if (m) return scaleScenario(Number(m[1]), quick);
  return smallScenarios(quick).find((s) => s.name === name);
}
