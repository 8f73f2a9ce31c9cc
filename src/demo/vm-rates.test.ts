import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import {
  guestLoad,
  refineRates,
  secondProbePps,
  sizeRates,
  VM_HOT_VCPUS,
  VM_LOW_VCPUS,
  VM_PROBE_PPS,
  VM_REFINE_MAX_FACTOR,
  vmDemoRates,
} from "./vm-rates.ts";

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
  it("averages served packets and CPU over the window's records, skipping idle windows", () => {
    const rs = [rec(0, 999, 1), rec(1000, 10, 0.2), rec(2000, 20, 0.3), rec(3000, 0, 0.001)];
    // the record at 0 is before the window, the last used no CPU
    const l = guestLoad(rs, "g1", 1000, 4000);
    expect(l?.servedPps).toBeCloseTo(15, 6);
    expect(l?.cpuCores).toBeCloseTo(0.25, 6);
    expect(guestLoad(rs, "g2", 0, 4000)).toBeNull();
    expect(guestLoad(rs, "g1", 3000, 4000)).toBeNull();
  });

  it("probes second at what the slowest guest served per CPU-second at the first", () => {
    expect(
      secondProbePps([
        { servedPps: 15, cpuCores: 0.25 },
        { servedPps: 15, cpuCores: 0.3 },
      ]),
    ).toBe(50);
    expect(secondProbePps([null])).toBeNull();
    // never at or below the first probe
    expect(secondProbePps([{ servedPps: 15, cpuCores: 2 }])).toBe(VM_PROBE_PPS + 1);
  });

  it("fits fixed CPU + cost per packet over the guests and sizes the hot rate above one vCPU", () => {
    // two guests around 0.3 cores fixed + 0.004 per packet/s
    const g = (fixed: number, cost: number, pps: number) => ({
      servedPps: pps,
      cpuCores: fixed + cost * pps,
    });
    const r = vmDemoRates([
      { first: g(0.28, 0.004, 15), second: g(0.28, 0.004, 50) },
      { first: g(0.32, 0.004, 15), second: g(0.32, 0.004, 50) },
      { first: g(0.9, 0.1, 15), second: null }, // one probe only: left out
    ]);
    expect(r?.fixedCpuCores).toBeCloseTo(0.3, 6);
    expect(r?.perVcpuPps).toBeCloseTo(250, 6);
    expect(r?.highPps).toBe(Math.round((VM_HOT_VCPUS - 0.3) / 0.004));
    // at the hot rate a guest needs more than one vCPU
    expect(0.3 + 0.004 * r!.highPps).toBeGreaterThan(1);
    expect(r?.lowPps).toBe(Math.round(VM_LOW_VCPUS / 0.004));
  });

  it("refines the hot rate from the line near it, within a bound of the first estimate", () => {
    const first = { highPps: 225, lowPps: 20, perVcpuPps: 196, fixedCpuCores: 0.1 };
    // near the hot rate: 80/s on 0.5 cores, 225/s on 0.7 cores (the cost per packet fell)
    const near = [
      { first: { servedPps: 80, cpuCores: 0.5 }, second: { servedPps: 225, cpuCores: 0.7 } },
    ];
    const r = refineRates(first, near);
    const cost = 0.2 / 145;
    expect(r.highPps).toBe(Math.round((VM_HOT_VCPUS - (0.5 - cost * 80)) / cost));
    expect(r.highPps).toBeGreaterThan(first.highPps);
    // a near-flat line: held to the bound
    const flat = [
      { first: { servedPps: 80, cpuCores: 0.5 }, second: { servedPps: 225, cpuCores: 0.5001 } },
    ];
    expect(refineRates(first, flat).highPps).toBe(225 * VM_REFINE_MAX_FACTOR);
    // no cost per packet: the first estimate stands
    const none = [{ first: { servedPps: 80, cpuCores: 0.5 }, second: null }];
    expect(refineRates(first, none)).toEqual(first);
  });

  it("gives no rates when the probes show no cost per packet", () => {
    const flat = { servedPps: 15, cpuCores: 0.3 };
    expect(vmDemoRates([{ first: flat, second: { servedPps: 50, cpuCores: 0.3 } }])).toBeNull();
    expect(vmDemoRates([{ first: flat, second: null }])).toBeNull();
    expect(vmDemoRates([{ first: flat, second: { servedPps: 15, cpuCores: 0.5 } }])).toBeNull();
  });

  it("runs the three probes in order and sizes from the line near the hot rate", async () => {
    // two alike partitions: 0.02 cores fixed + 0.0006 per packet/s up to 1000/s, then the cost
    // per packet falls to 0.0004 (so the line through the low probes undersizes the hot rate)
    const cpuAt = (pps: number) =>
      pps <= 1000 ? 0.02 + 0.0006 * pps : 0.62 + 0.0004 * (pps - 1000);
    const asked: number[] = [];
    const sized = await sizeRates(async (pps) => {
      asked.push(pps);
      return [
        { servedPps: pps, cpuCores: cpuAt(pps) },
        { servedPps: pps, cpuCores: cpuAt(pps) },
      ];
    }, 50);
    // 1st at 50: 0.05 cores → 1000 served per CPU-second → 2nd at 1000;
    // line 0.02 + 0.0006 × pps → hot (1.25 − 0.02) ÷ 0.0006 = 2050 → 3rd at 2050;
    // 1000 → 0.62, 2050 → 1.04: cost 0.42 ÷ 1050 = 0.0004, fixed 0.62 − 0.4 = 0.22
    expect(asked).toEqual([50, 1000, 2050]);
    expect(sized?.probePps).toEqual([50, 1000, 2050]);
    expect(sized?.fixedCpuCores).toBeCloseTo(0.22, 9);
    expect(sized?.perVcpuPps).toBeCloseTo(2500, 6);
    // hot (1.25 − 0.22) ÷ 0.0004 = 2575; low 0.1 ÷ 0.0004 = 250
    expect([sized?.highPps, sized?.lowPps]).toEqual([2575, 250]);
  });

  it("stops after two probes that give no cost per packet", async () => {
    const asked: number[] = [];
    const sized = await sizeRates(async (pps) => {
      asked.push(pps);
      return [{ servedPps: pps, cpuCores: 0.3 }];
    });
    // 15/s on 0.3 cores → 50/s; the same CPU at both: no cost per packet
    expect(asked).toEqual([VM_PROBE_PPS, 50]);
    expect(sized).toBeNull();
    expect(await sizeRates(async () => [null])).toBeNull();
  });
});
