import { describe, expect, it } from "vitest";
import type { CycleRecord, Directive } from "../core/model.ts";
import { phaseOutcome, type VcpuSample } from "./vm-phase.ts";

const T0 = 1_000_000;

const dir = (partition: string, cpuMillis: number, capCpuMillis = cpuMillis): Directive => ({
  partition,
  cpuMillis,
  weight: 100,
  idle: false,
  capCpuMillis,
  burstCpuMillis: 0,
  capReason: Number.isFinite(capCpuMillis) ? "capped" : null,
  cpuCount: Math.ceil(capCpuMillis / 1000),
});

/** One 1 s cycle at `tMs`: p1's and p2's entitlements (capped at them), the hog's CPU used. */
const rec = (tMs: number, p1: number, p2: number, hogCores: number): CycleRecord =>
  ({
    cycle: tMs / 1000,
    startedAtMs: T0 + tMs,
    intervalMs: 1000,
    capacityCpuMillis: 2000,
    partitions: [
      {
        id: "p1",
        status: "ok",
        throughput: null,
        decision: null,
        directive: dir("p1", p1),
        written: [],
      },
      {
        id: "p2",
        status: "ok",
        throughput: null,
        decision: null,
        directive: dir("p2", p2),
        written: [],
      },
      {
        id: "hog",
        status: "ok",
        throughput: { partition: "hog", windowMs: 1000, cpuCores: hogCores } as never,
        decision: null,
        directive: dir("hog", 100, Number.POSITIVE_INFINITY),
        written: [],
      },
    ],
    timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 0 },
  }) as CycleRecord;

const load = (sent: number, answered: number, p99Ms: number) => ({
  name: "x",
  sent,
  answered,
  servedRatio: answered / sent,
  latency: { p99Ms },
});

describe("a phase of the VM demo / vm-balance", () => {
  // p1 goes from 500m (before the phase, at -1 s) to 1300m: 500, 900, 1200, 1300, 1300, 1300, 1300, 1300
  const records = [
    rec(-1000, 500, 900, 0.5),
    ...[500, 900, 1200, 1300, 1300, 1300, 1300, 1300].map((p1, i) => rec(i * 1000, p1, 450, 0.4)),
    rec(8000, 400, 1300, 0.9), // the next phase: not counted
  ];
  const base = {
    records,
    t0: T0,
    name: "p1 hot",
    fromMs: 0,
    toMs: 8000,
    hot: "p1",
    partitions: [
      { name: "p1", offeredPps: 2000, load: load(16_000, 15_200, 12.5) },
      { name: "p2", offeredPps: 150, load: null },
    ],
    batch: new Set(["hog"]),
  };

  it("follow time, hog CPU, served ÷ offered, p99 and mean caps of cgroup partitions", () => {
    const ph = phaseOutcome({ ...base, vcpuSamples: null });
    // start 500 (the record before the phase), settled 1300 (last quarter: 6 s, 7 s);
    // 90 % of the way = 1220: first reached at 3 s
    expect(ph.followMs).toBe(3000);
    // hog 0.4 cores ÷ 2000m capacity = 0.2 of capacity → 400m
    expect(ph.hogCpuMillis).toBe(400);
    const [p1, p2] = ph.guests;
    // (500 + 900 + 1200 + 5 × 1300) ÷ 8 = 1137.5 → 1138
    expect(p1).toEqual({
      partition: "p1",
      offeredPps: 2000,
      offered: 16_000,
      served: 15_200,
      servedRatio: 0.95,
      p99Ms: 12.5,
      meanVcpus: null,
      maxVcpus: null,
      meanCapCpuMillis: 1138,
    });
    // no load result: zeros and nulls, the cap still known
    expect(p2).toMatchObject({ offered: 0, served: 0, servedRatio: null, p99Ms: null });
    expect(p2?.meanCapCpuMillis).toBe(450);
  });

  it("vCPUs of guests from the samples within the phase (a guest not sampled has 1)", () => {
    const vcpuSamples: VcpuSample[] = [
      { tMs: -500, vcpus: { p1: 2, p2: 2 } }, // before the phase
      { tMs: 500, vcpus: { p1: 1 } },
      { tMs: 1500, vcpus: { p1: 2 } },
      { tMs: 2500, vcpus: { p1: 2, p2: 1 } },
      { tMs: 3500, vcpus: { p1: 2, p2: 1 } },
    ];
    const ph = phaseOutcome({ ...base, vcpuSamples });
    // p1: (1 + 2 + 2 + 2) ÷ 4 = 1.75, at most 2; p2: 1 each
    expect([ph.guests[0]?.meanVcpus, ph.guests[0]?.maxVcpus]).toEqual([1.75, 2]);
    expect([ph.guests[1]?.meanVcpus, ph.guests[1]?.maxVcpus]).toEqual([1, 1]);
  });

  it("no follow time without a hot partition, no hog CPU without records", () => {
    expect(phaseOutcome({ ...base, hot: null, vcpuSamples: null }).followMs).toBeNull();
    const empty = phaseOutcome({ ...base, records: [], vcpuSamples: null });
    expect([empty.followMs, empty.hogCpuMillis, empty.guests[0]?.meanCapCpuMillis]).toEqual([
      null,
      null,
      null,
    ]);
  });
});
