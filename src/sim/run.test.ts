import { describe, expect, it } from "vitest";
import { nonePolicy } from "../policy/baselines/none.ts";
import { staticEqualCapsPolicy } from "../policy/baselines/static-caps.ts";
import { staticWeightsPolicy } from "../policy/baselines/static-weights.ts";
import { weirPolicy } from "../policy/weir.ts";
import { constant } from "./load.ts";
import { reactionTime, recoveryTime } from "./measures.ts";
import { runScenario, type Scenario } from "./run.ts";
import { scaleScenario, scenarioByName, smallScenarios } from "./scenarios.ts";

describe("reaction and recovery times", () => {
  it("reaction: first cycle at 90 % of the way from the old cap to the settled one", () => {
    const caps = [
      { tMs: 900, cap: 200 },
      { tMs: 1000, cap: 200 },
      { tMs: 1100, cap: 500 },
      { tMs: 1200, cap: 950 },
      { tMs: 1300, cap: 1000 },
      { tMs: 1400, cap: 1000 },
    ];
    // before 200, settled (median of the last quarter of [1000, 1400]) 1000: target 200 + 0.9 * 800 = 920,
    // first reached at 1200 -> 200 ms.
    expect(reactionTime(caps, { atMs: 1000, untilMs: 1400 })).toBe(200);
    expect(
      reactionTime([{ tMs: 900, cap: null }, ...caps.slice(1)], { atMs: 1000, untilMs: 1400 }),
    ).toBeNull();
    expect(
      reactionTime(
        caps.map((c) => ({ ...c, cap: 200 })),
        { atMs: 1000, untilMs: 1400 },
      ),
    ).toBeNull();
  });

  it("recovery: start of the first run of 5 windows serving >= 90 %", () => {
    const w = (tMs: number, ok: boolean) => ({ tMs, ok });
    const windows = [
      w(100, false),
      w(200, true),
      w(300, false),
      ...[400, 500, 600, 700, 800].map((t) => w(t, true)),
    ];
    expect(recoveryTime(windows, 0)).toBe(400);
    expect(recoveryTime(windows.slice(0, 5), 0)).toBeNull();
  });
});

describe("scenarios", () => {
  it("are well formed: unique ids, a load on every network partition, reaction steps inside the run", () => {
    for (const s of [...smallScenarios(), scaleScenario(1000)]) {
      const ids = new Set(s.partitions.map((p) => p.id));
      expect(ids.size).toBe(s.partitions.length);
      for (const p of s.partitions)
        if (p.kind === "network") expect(typeof p.load).toBe("function");
      if (s.reaction) expect(s.reaction.untilMs).toBeLessThanOrEqual(s.durationMs);
    }
    expect(scenarioByName("scale-1000")?.partitions.length).toBe(1000);
    expect(scenarioByName("nope")).toBeUndefined();
  });
});

describe("work conservation through the real Manager", () => {
  // One light network partition (700 packets/s at 3,500 per CPU-second = 0.2 CPU) and a batch
  // hog on 2 CPUs, under the static-weights baseline: the hog runs in the idle class, uncapped.
  const scenario: Scenario = {
    name: "light-and-hog",
    description: "a light network partition beside an idle-class batch hog",
    cpus: 2,
    reserveCpuMillis: 0,
    durationMs: 10_000,
    intervalMs: 100,
    tickMs: 1,
    seed: 21,
    partitions: [
      { id: "web", kind: "network", load: constant(700) },
      { id: "hog", kind: "batch" },
    ],
  };

  it("an idle-class hog uses >= 95 % of what the network partition leaves, and costs it nothing", () => {
    const r = runScenario(scenario, () => staticWeightsPolicy());
    const m = r.measures;
    const left = scenario.cpus - m.networkCpuCores;
    expect(m.batchCpuCores).toBeGreaterThanOrEqual(0.95 * left);
    expect(m.networkCpuCores + m.batchCpuCores).toBeLessThanOrEqual(scenario.cpus + 1e-9);
    expect(m.servedFraction).toBeGreaterThan(0.999);
    // The network partition never waits behind the hog: its latency is the 1 ms tick's (arrivals
    // mid-tick, served at the tick's end), as alone.
    const alone = runScenario(
      { ...scenario, partitions: scenario.partitions.filter((p) => p.kind === "network") },
      () => staticWeightsPolicy(),
    );
    expect(m.p99LatencyMs).toBe(alone.measures.p99LatencyMs);
    // Nothing capped: no cap in any cycle.
    expect(r.series!.partitions.hog!.capCpuMillis.every((c) => c === null)).toBe(true);
  });
});

describe("a scenario through the real Manager (smoke, behavioural)", () => {
  const hog = scenarioByName("hog", true)!;

  it("with a batch hog present, weir serves at least as much as plain CFS and cuts the p99 latency", () => {
    const weir = runScenario(hog, () => weirPolicy);
    const none = runScenario(hog, () => nonePolicy());
    // Generous: plain CFS leaves partition c short of CPU (its need is above an equal share).
    expect(weir.measures.servedFraction).toBeGreaterThanOrEqual(
      none.measures.servedFraction - 0.01,
    );
    expect(weir.measures.p99LatencyMs).toBeLessThan(none.measures.p99LatencyMs);
    expect(weir.measures.allocationWrites).toBeGreaterThan(0);
    expect(none.measures.allocationWrites).toBe(0);
    // Nothing is created from nothing: CPU used never exceeds the machine.
    for (const r of [weir, none])
      expect(r.measures.networkCpuCores + r.measures.batchCpuCores).toBeLessThanOrEqual(2.0001);
  });

  it("records per-cycle series of the applied caps, and static caps stay put", () => {
    const r = runScenario(hog, () => staticEqualCapsPolicy());
    const s = r.series!;
    expect(s.tMs.length).toBe(hog.durationMs / hog.intervalMs);
    // 2,000m / 4 partitions = 500m each, from the first cycle on.
    expect(new Set(s.partitions.hog!.capCpuMillis)).toEqual(new Set([500]));
    // One write per partition: the quota (-1 -> 50000 us); weight 100 is 1024 shares, already there.
    expect(r.measures.allocationWrites).toBe(4);
  });
});
