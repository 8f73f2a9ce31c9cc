import { describe, expect, it } from "vitest";
import { type DirectiveToOnline, formatVmSummary, type VmDemoSummary } from "./vm-summary.ts";

const d = (partition: string, ms: number | null, atMs: number): DirectiveToOnline => ({
  partition,
  cpuCount: 2,
  ms,
  atMs,
});

const summary = (over: Partial<VmDemoSummary> = {}): VmDemoSummary => ({
  mode: "vm",
  durationMs: 90_000,
  rates: { highPps: 590, lowPps: 60, perVcpuPps: 602.4, fixedCpuCores: 0.27, probePps: [15, 48] },
  phases: [
    {
      name: "g1 hot",
      fromMs: 0,
      toMs: 30_000,
      followMs: 4100,
      hogCpuMillis: 310,
      guests: [
        {
          partition: "g1",
          offeredPps: 150,
          offered: 4500,
          served: 4050,
          servedRatio: 0.9,
          p99Ms: 41.5,
          meanVcpus: 1.6,
          maxVcpus: 2,
          meanCapCpuMillis: 1350,
        },
        {
          partition: "g2",
          offeredPps: 15,
          offered: 450,
          served: 450,
          servedRatio: 1,
          p99Ms: null,
          meanVcpus: 1,
          maxVcpus: 1,
          meanCapCpuMillis: null,
        },
      ],
      directiveToOnline: [d("g1", 900, 2000), d("g1", 700, 9000), d("g2", null, 28_000)],
    },
  ],
  directiveToOnlineMs: [d("g1", 900, 2000), d("g1", 700, 9000), d("g2", null, 28_000)],
  teardown: { clean: true, left: [] },
  notes: [],
  ...over,
});

describe("weir demo --vm summary", () => {
  it("prints per phase and guest rate, served ÷ offered, p99, vCPUs, cap and directive → online", () => {
    const text = formatVmSummary(summary());
    expect(text).toContain(
      "rates: 590 (hot) / 60 packets/s, sized from probes at 15 and 48 packets/s: a guest uses 270m fixed + 1 vCPU per 602 packets/s (hot needs 1.25 vCPUs)",
    );
    expect(text).toContain("g1 hot (30 s): weir followed in 4100 ms, hog CPU 310m");
    expect(text).toMatch(/g1\s+150\s+4500\s+4050\s+90\.0 %\s+41\.5\s+1\.60\/2\s+1350m/);
    expect(text).toMatch(/g2\s+15\s+450\s+450\s+100\.0 %\s+n\/a\s+1\.00\/1\s+none/);
    expect(text).toContain(
      "  directive → guest CPU online: 2 times, median 900 ms, range 700–900 ms (1 not online by the phase's end) [g1→2: 900, g1→2: 700, g2→2: —]",
    );
    expect(text).toContain("directive → guest CPU online, all phases: 2 times");
    expect(text).toContain("teardown: clean");
  });

  it("says when the rates were given, when no vCPU was added and what teardown left", () => {
    const s = summary({
      rates: { highPps: 40, lowPps: 8, perVcpuPps: null, fixedCpuCores: null, probePps: [] },
      directiveToOnlineMs: [],
      teardown: { clean: false, left: ["netns weirdemovm-g1"] },
    });
    s.phases[0]!.directiveToOnline = [];
    const text = formatVmSummary(s);
    expect(text).toContain("rates: 40 (hot) / 8 packets/s, as given");
    expect(text).toContain("  directive → guest CPU online: no vCPU was added");
    expect(text).toContain("directive → guest CPU online, all phases: no vCPU was added");
    expect(text).toContain("teardown: LEFT netns weirdemovm-g1");
  });
});
