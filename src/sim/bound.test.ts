import { describe, expect, it } from "vitest";
import { clairvoyantBound } from "./bound.ts";
import { constant } from "./load.ts";
import { policyFactories } from "./policies.ts";
import { runScenario, type Scenario } from "./run.ts";
import { scenarioByName } from "./scenarios.ts";

describe("clairvoyant bound", () => {
  // The quick flash crowd (some policies drop packets) and square wave (some move caps often).
  it.each(["flash", "square"])(
    "%s: no policy serves more packets, and none that serves as many has a lower p99",
    { timeout: 60_000 },
    (name) => {
      const scenario = scenarioByName(name, true)!;
      const bound = clairvoyantBound(scenario);
      for (const p of policyFactories) {
        const m = runScenario(scenario, p.make).measures;
        // Same arrivals: each partition draws from its own stream.
        expect(m.offeredPackets, `${name} / ${p.name}`).toBe(bound.offeredPackets);
        expect(m.servedPackets, `${name} / ${p.name}`).toBeLessThanOrEqual(bound.servedPackets);
        if (m.servedPackets === bound.servedPackets)
          expect(m.p99LatencyMs, `${name} / ${p.name}`).toBeGreaterThanOrEqual(bound.p99LatencyMs);
      }
    },
  );

  it("is each partition alone on the machine: a partition that needs 2.5 CPUs on 2 drops the rest", () => {
    const scenario: Scenario = {
      name: "over",
      description: "",
      cpus: 2,
      reserveCpuMillis: 0,
      durationMs: 5000,
      intervalMs: 100,
      tickMs: 1,
      seed: 3,
      drift: { amplitude: 0 },
      partitions: [
        // 8,750 packets/s at 3,500 per CPU-second = 2.5 CPUs; alone it gets both CPUs.
        { id: "a", kind: "network", load: constant(8750) },
        { id: "hog", kind: "batch" },
      ],
    };
    const b = clairvoyantBound(scenario);
    // Served at most 2 CPUs × 3,500 = 7,000 packets/s of 8,750: 80 %, the queue (1,000) fills and drops the rest.
    expect(b.servedFraction).toBeGreaterThan(0.75);
    expect(b.servedFraction).toBeLessThan(0.82);
    expect(b.networkCpuCores).toBeCloseTo(2, 1);
    expect(b.batchCpuCoresLeft).toBeCloseTo(0, 1);
  });
});
