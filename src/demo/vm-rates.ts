// `weir demo --vm`'s rates, sized from what each guest measures it serves per vCPU-second
// (pure). A TCG guest's speed depends on the host's CPU model and on what else runs, so the
// demo first offers every guest a probe rate and reads, from the guests' own reports (the
// agent's served-packet counter and the guest's /proc/stat CPU), the packets served per
// CPU-second: the rate one fully busy vCPU serves. The hot rate is above that (one vCPU cannot
// serve it: weir's entitlement passes one CPU and the guest gets a second vCPU), the low rate
// well below it.
import type { CycleRecord, PartitionId } from "../core/model.ts";

/** The probe's offered rate, packets/s: low enough for one vCPU of any TCG guest to serve. */
export const VM_PROBE_PPS = 15;
/** Hot rate ÷ measured packets per vCPU-second: more than one vCPU can serve. */
export const VM_HOT_PER_VCPU = 1.5;
/** Low rate ÷ measured packets per vCPU-second. */
export const VM_LOW_PER_VCPU = 0.15;
/** Windows with less guest CPU than this (cores) say nothing about its speed. */
const MIN_CPU_CORES = 0.02;

/**
 * Packets a guest served per CPU-second of its own (all its vCPUs) over the records that
 * started within [fromMs, toMs): Σ served ÷ Σ CPU, from its agent's reports. Null when it
 * reported no such window.
 */
export function servedPerCpuSec(
  records: readonly CycleRecord[],
  partition: PartitionId,
  fromMs: number,
  toMs: number,
): number | null {
  let served = 0;
  let cpuSec = 0;
  for (const r of records) {
    if (r.startedAtMs < fromMs || r.startedAtMs >= toMs) continue;
    const t = r.partitions.find((p) => p.id === partition)?.throughput;
    if (!t || t.cpuCores < MIN_CPU_CORES || t.windowMs <= 0) continue;
    served += (t.servedPacketsPerSec * t.windowMs) / 1000;
    cpuSec += (t.cpuCores * t.windowMs) / 1000;
  }
  return cpuSec > 0 && served > 0 ? served / cpuSec : null;
}

export interface VmRates {
  highPps: number;
  lowPps: number;
  /** The figure the rates came from: the slowest guest's packets per vCPU-second. */
  perVcpuPps: number;
}

/**
 * Rates from each guest's packets per vCPU-second: the slowest guest's (so the hot rate needs
 * more than one vCPU on every guest), × VM_HOT_PER_VCPU and × VM_LOW_PER_VCPU, whole packets,
 * at least 1. Null when no guest's speed is known.
 */
export function vmDemoRates(perVcpuPps: ReadonlyArray<number | null>): VmRates | null {
  const known = perVcpuPps.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
  if (known.length === 0) return null;
  const v = Math.min(...known);
  return {
    highPps: Math.max(1, Math.round(v * VM_HOT_PER_VCPU)),
    lowPps: Math.max(1, Math.round(v * VM_LOW_PER_VCPU)),
    perVcpuPps: v,
  };
}
