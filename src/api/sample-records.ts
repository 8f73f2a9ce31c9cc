// Cycle records with the numbers of a real cycle on this machine's scale, for the API's tests
// and docs. Every figure follows from the others (arithmetic in the comments), so a test that
// reads one back checks the API passed the record through, not a made-up value.

import type { CycleRecord, PartitionSpec } from "../core/model.ts";

export const sampleSpecs: PartitionSpec[] = [
  {
    id: "web",
    minCpuMillis: 100,
    maxCpuMillis: 1500,
    weight: 200,
    importance: 1,
    goalPacketsPerSec: 2000,
    kind: "network",
  },
  { id: "dns", minCpuMillis: 100, maxCpuMillis: 1000, weight: 100, importance: 2, kind: "network" },
  { id: "batch", minCpuMillis: 0, maxCpuMillis: 2000, weight: 50, importance: 5, kind: "batch" },
];

/**
 * One cycle on a 2-CPU capacity (2000m) at a 100 ms interval:
 * - web: capped at 500m, throttled in 60 % of periods, 3000 pkt/s offered, 2250 served,
 *   750 dropped; 0.5 cores used -> velocity 2250 / 0.5 = 4500 pkt per CPU-second.
 *   Demand = 3000 / 4500 x 1.2 headroom = 0.8 cores = 800m; raised 500m -> 800m.
 *   Performance index = goal 2000 / achieved 2250 = 0.889.
 * - dns: not constrained, 1200 pkt/s offered and served on 0.3 cores -> 4000 pkt per CPU-s;
 *   needs 0.3 x 1.2 = 360m; shrinks 400m -> 360m (10 % shrink limit: 400 x 0.9 = 360).
 * - batch: no traffic, gets what is left: 2000 - 800 - 360 = 840m.
 * `offeredScale` multiplies web's offered load so successive records differ.
 */
export function sampleRecord(cycle: number, startedAtMs: number, offeredScale = 1): CycleRecord {
  const webOffered = 3000 * offeredScale;
  return {
    cycle,
    startedAtMs,
    intervalMs: 100,
    capacityCpuMillis: 2000,
    partitions: [
      {
        id: "web",
        status: "ok",
        throughput: {
          partition: "web",
          windowMs: 100,
          offeredPacketsPerSec: webOffered,
          servedPacketsPerSec: 2250,
          droppedPacketsPerSec: webOffered - 2250,
          cpuCores: 0.5,
          throttledFraction: 0.6,
          rawVelocityPacketsPerCpuSec: 4500,
          source: "host",
        },
        decision: {
          partition: "web",
          demandCpuMillis: 800,
          previousCpuMillis: 500,
          cpuMillis: 800,
          velocityPacketsPerCpuSec: 4500,
          performanceIndex: 2000 / 2250,
          why: "throttled 60% and dropping 750 pkt/s: demand 3000 pkt/s / 4500 pkt/cpu-s x 1.2 = 800m; raised 500m -> 800m",
        },
        directive: {
          partition: "web",
          cpuMillis: 800,
          weight: 4000,
          idle: false,
          capCpuMillis: Number.POSITIVE_INFINITY,
          burstCpuMillis: 0,
          capReason: null,
          cpuCount: 2,
        },
        written: ["cpu.shares"],
      },
      {
        id: "dns",
        status: "ok",
        throughput: {
          partition: "dns",
          windowMs: 100,
          offeredPacketsPerSec: 1200,
          servedPacketsPerSec: 1200,
          droppedPacketsPerSec: 0,
          cpuCores: 0.3,
          throttledFraction: 0,
          rawVelocityPacketsPerCpuSec: 4000,
          source: "host",
        },
        decision: {
          partition: "dns",
          demandCpuMillis: 360,
          previousCpuMillis: 400,
          cpuMillis: 360,
          velocityPacketsPerCpuSec: 4000,
          performanceIndex: null,
          why: "unconstrained: uses 300m, needs 300m x 1.2 = 360m; shrinks 400m -> 360m (limit 10%/cycle)",
        },
        directive: {
          partition: "dns",
          cpuMillis: 360,
          weight: 1800,
          idle: false,
          capCpuMillis: 500,
          burstCpuMillis: 500,
          capReason: "max",
          cpuCount: 1,
        },
        written: ["cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.shares"],
      },
      {
        id: "batch",
        status: "ok",
        throughput: {
          partition: "batch",
          windowMs: 100,
          offeredPacketsPerSec: 0,
          servedPacketsPerSec: 0,
          droppedPacketsPerSec: 0,
          cpuCores: 0.7,
          throttledFraction: 0.9,
          rawVelocityPacketsPerCpuSec: 0,
          source: "host",
        },
        decision: {
          partition: "batch",
          demandCpuMillis: 840,
          previousCpuMillis: 900,
          cpuMillis: 840,
          velocityPacketsPerCpuSec: null,
          performanceIndex: null,
          why: "batch: gets what is left, 2000m - 800m - 360m = 840m",
        },
        directive: {
          partition: "batch",
          cpuMillis: 840,
          weight: 1,
          idle: true,
          capCpuMillis: Number.POSITIVE_INFINITY,
          burstCpuMillis: 0,
          capReason: null,
          cpuCount: 2,
        },
        written: ["cpu.idle"],
      },
    ],
    timingsMs: { sample: 0.04, reports: 0.01, policy: 0.02, apply: 0.05, total: 0.12 },
  };
}
