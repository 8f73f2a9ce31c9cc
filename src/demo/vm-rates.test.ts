import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import { servedPerCpuSec, VM_HOT_PER_VCPU, vmDemoRates } from "./vm-rates.ts";

const rec = (startedAtMs: number, served: number, cpuCores: number): CycleRecord =>
  ({
    cycle: startedAtMs / 1000,
    startedAtMs,
    intervalMs: 1000,
    capacityCpuMillis: 2000,
    partitions: [
      {
        id: "g1",
        status: "ok",
        throughput: {
          partition: "g1",
          windowMs: 1000,
          offeredPacketsPerSec: served,
          servedPacketsPerSec: served,
          droppedPacketsPerSec: 0,
          cpuCores,
          throttledFraction: 0,
          rawVelocityPacketsPerCpuSec: null,
          source: "agent",
        },
        decision: null,
        directive: null,
        written: [],
      },
    ],
    timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 0 },
  }) as CycleRecord;

describe("weir demo --vm rates", () => {
  it("reads served packets per CPU-second over the window's records, skipping idle windows", () => {
    const rs = [rec(0, 999, 1), rec(1000, 15, 0.1), rec(2000, 15, 0.2), rec(3000, 0, 0.001)];
    // (15 + 15) ÷ (0.1 + 0.2); the record at 0 is before the window, the last used no CPU
    expect(servedPerCpuSec(rs, "g1", 1000, 4000)).toBeCloseTo(100, 6);
    expect(servedPerCpuSec(rs, "g2", 0, 4000)).toBeNull();
    expect(servedPerCpuSec(rs, "g1", 3000, 4000)).toBeNull();
  });

  it("sizes the hot rate above what the slowest guest serves on one vCPU", () => {
    const r = vmDemoRates([120, null, 80]);
    expect(r?.perVcpuPps).toBe(80);
    expect(r?.highPps).toBe(Math.round(80 * VM_HOT_PER_VCPU));
    expect(r!.highPps).toBeGreaterThan(80);
    expect(r!.lowPps).toBeLessThan(80);
    expect(r!.lowPps).toBeGreaterThanOrEqual(1);
    expect(vmDemoRates([null, Number.NaN, 0])).toBeNull();
  });
});
