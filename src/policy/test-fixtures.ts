// Builders for the policy's tests: a partition spec and one window of throughput with every
// field spelled out, so each test states only what it is about.
import type { PartitionSpec, Throughput } from "../core/model.ts";

export function spec(id: string, over: Partial<PartitionSpec> = {}): PartitionSpec {
  return {
    id,
    minCpuMillis: 0,
    maxCpuMillis: 4000,
    weight: 1,
    importance: 3,
    kind: "network",
    ...over,
  };
}

export function throughput(partition: string, over: Partial<Throughput> = {}): Throughput {
  return {
    partition,
    windowMs: 100,
    offeredPacketsPerSec: 0,
    servedPacketsPerSec: 0,
    droppedPacketsPerSec: 0,
    cpuCores: 0,
    throttledFraction: 0,
    rawVelocityPacketsPerCpuSec: null,
    source: "host",
    ...over,
  };
}

/** Deterministic PRNG (mulberry32) for property-style loops. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
