// Inputs for the baselines' tests: specs and throughput built with only the fields that matter.
import type { PartitionSpec, Throughput } from "../../core/model.ts";
import { defaultPolicyKnobs } from "../knobs.ts";
import type { PolicyInput } from "../types.ts";

export const spec = (
  id: string,
  kind: PartitionSpec["kind"] = "network",
  extra: Partial<PartitionSpec> = {},
): PartitionSpec => ({
  id,
  kind,
  minCpuMillis: 0,
  maxCpuMillis: 2000,
  weight: 100,
  importance: 3,
  ...extra,
});

export const tp = (
  partition: string,
  cpuCores: number,
  extra: Partial<Throughput> = {},
): Throughput => ({
  partition,
  windowMs: 100,
  offeredPacketsPerSec: 0,
  servedPacketsPerSec: 0,
  droppedPacketsPerSec: 0,
  cpuCores,
  throttledFraction: 0,
  rawVelocityPacketsPerCpuSec: null,
  source: "sim",
  ...extra,
});

export const input = (
  nowMs: number,
  specs: PartitionSpec[],
  throughput: Throughput[] = [],
  capacityCpuMillis = 2000,
): PolicyInput => ({
  nowMs,
  knobs: defaultPolicyKnobs(capacityCpuMillis),
  specs,
  throughput: new Map(throughput.map((t) => [t.partition, t])),
});
