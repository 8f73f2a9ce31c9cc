import { describe, expect, it } from "vitest";
import { formatVmSummary, type VmDemoSummary } from "./vm.ts";

const summary = (over: Partial<VmDemoSummary> = {}): VmDemoSummary => ({
  mode: "vm",
  durationMs: 90_000,
  phases: [
    {
      name: "g1 hot",
      fromMs: 0,
      toMs: 30_000,
      guests: [
        {
          partition: "g1",
          offered: 1200,
          served: 1188,
          servedRatio: 0.99,
          p99Ms: 41.5,
          meanVcpus: 1.6,
          maxVcpus: 2,
          meanCapCpuMillis: 1350,
        },
        {
          partition: "g2",
          offered: 240,
          served: 240,
          servedRatio: 1,
          p99Ms: null,
          meanVcpus: 1,
          maxVcpus: 1,
          meanCapCpuMillis: null,
        },
      ],
    },
  ],
  directiveToOnlineMs: [
    { partition: "g1", cpuCount: 2, ms: 900 },
    { partition: "g2", cpuCount: 2, ms: 1500 },
    { partition: "g1", cpuCount: 2, ms: 700 },
  ],
  teardown: { clean: true, left: [] },
  notes: [],
  ...over,
});

describe("weir demo --vm summary", () => {
  it("prints per phase and guest served ÷ offered, p99, vCPUs and cap, and directive-to-online", () => {
    const text = formatVmSummary(summary());
    expect(text).toContain("g1 hot (30 s)");
    expect(text).toMatch(/g1\s+1200\s+1188\s+99\.0 %\s+41\.5\s+1\.60\/2\s+1350m/);
    expect(text).toMatch(/g2\s+240\s+240\s+100\.0 %\s+n\/a\s+1\.00\/1\s+none/);
    expect(text).toContain(
      "directive → guest CPU online: 3 times, median 900 ms, range 700–1500 ms",
    );
    expect(text).toContain("teardown: clean");
  });

  it("says when no vCPU was added and what teardown left", () => {
    const text = formatVmSummary(
      summary({
        directiveToOnlineMs: [],
        teardown: { clean: false, left: ["netns weirdemovm-g1"] },
      }),
    );
    expect(text).toContain("directive → guest CPU online: no vCPU was added");
    expect(text).toContain("teardown: LEFT netns weirdemovm-g1");
  });
});
