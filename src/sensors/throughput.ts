// Throughput information from two cumulative samples: the rates the policy reads.
import type { CounterSample, PartitionId, Throughput } from "../core/model.ts";
import { clamp, counterDelta, secondsFromMs, secondsFromNs } from "../core/units.ts";

export interface ThroughputOptions {
  /**
   * Below this much CPU used in the window the velocity is null: cpuacct.usage moves in
   * 4 ms ticks (HZ=250), so a smaller delta is mostly tick noise. Default 1 ms.
   */
  minCpuNsForVelocity?: number;
  /** A packet counter moving faster than this is garbage or a wrap: the window counts 0. */
  maxPacketsPerSec?: number;
  /** CPU usage moving faster than this many cores is garbage: the window counts 0. */
  maxCores?: number;
  /** A byte counter moving faster than this is garbage or a wrap: the window counts 0. */
  maxBytesPerSec?: number;
  /**
   * Below this much CPU used + CPU delay in the window the delay fraction is null (too
   * little happened to tell). Default 1 ms.
   */
  minNsForCpuDelay?: number;
}

const DEFAULTS = {
  minCpuNsForVelocity: 1e6,
  maxPacketsPerSec: 1e9,
  maxCores: 4096,
  // 1 Tbit/s
  maxBytesPerSec: 125e9,
  minNsForCpuDelay: 1e6,
};

/**
 * Rates of one partition over the window between `prev` and `next`.
 *
 * - offered/served/dropped packets per second from counter deltas; offered is never below
 *   dropped (offered counts what arrived, including what was dropped).
 * - ingress/egress bytes per second from byte counter deltas, only when both samples have
 *   them (sources that count bytes: bpf).
 * - cpuCores = CPU-ns used ÷ window-ns; throttledFraction = Δnr_throttled ÷ Δnr_periods.
 * - rawVelocityPacketsPerCpuSec = served packets ÷ CPU-seconds used; null when less than
 *   `minCpuNsForVelocity` of CPU was used, or a counter it needs reset in this window.
 * - cpuDelayFraction = Δdelay ÷ (Δdelay + ΔCPU used), 0..1; null when either sample lacks
 *   cpuDelayNs, either counter reset or jumped in this window, or the two together moved
 *   less than `minNsForCpuDelay`.
 *
 * CPU counters read at other times than the packets (`cpuAtMs`: a sensor that leaves an idle
 * partition's CPU unread for a while carries the last ones read) are rated over their own span:
 * cpuCores = CPU-ns used ÷ the span between the two reads, given as `cpuWindowMs` (0 and
 * cpuCores 0 when neither sample read them anew: nothing measured in this window); velocity
 * and CPU delay are null in such a window (packets and CPU over different spans).
 *
 * A counter that went backwards (reset: interface or cgroup re-created, 32-bit wrap) or
 * jumped impossibly far counts as 0 for this window (core/units.ts counterDelta), so no
 * rate is ever negative or huge. A window of 0 ms or less gives zero rates.
 */
export function throughputFromSamples(
  partition: PartitionId,
  prev: CounterSample,
  next: CounterSample,
  source: Throughput["source"],
  opts?: ThroughputOptions,
): Throughput {
  // the defaults themselves when no option is given (the manager's call): no object a window
  const o = opts === undefined ? DEFAULTS : { ...DEFAULTS, ...opts };
  const windowMs = next.atMs - prev.atMs;
  if (!(windowMs > 0))
    return {
      partition,
      windowMs: 0,
      offeredPacketsPerSec: 0,
      servedPacketsPerSec: 0,
      droppedPacketsPerSec: 0,
      cpuCores: 0,
      throttledFraction: 0,
      rawVelocityPacketsPerCpuSec: null,
      cpuDelayFraction: null,
      source,
    };
  const windowSec = secondsFromMs(windowMs);
  const maxPackets = o.maxPacketsPerSec * windowSec;
  // the CPU counters' own span: the window itself unless a sample carried them (cpuAtMs)
  const cpuWindowMs =
    prev.cpuAtMs === undefined && next.cpuAtMs === undefined
      ? windowMs
      : (next.cpuAtMs ?? next.atMs) - (prev.cpuAtMs ?? prev.atMs);
  const cpuSpanned = cpuWindowMs === windowMs;
  const maxCpuNs = o.maxCores * Math.max(0, cpuWindowMs) * 1e6;

  const offered = counterDelta(prev.offeredPackets, next.offeredPackets, maxPackets);
  const served = counterDelta(prev.servedPackets, next.servedPackets, maxPackets);
  const dropped = counterDelta(prev.droppedPackets, next.droppedPackets, maxPackets);
  const cpuNs = counterDelta(prev.cpuUsageNs, next.cpuUsageNs, maxCpuNs);
  const periods = counterDelta(prev.nrPeriods, next.nrPeriods, maxPackets);
  const throttled = counterDelta(prev.nrThrottled, next.nrThrottled, maxPackets);

  // A delta of 0 may be a real 0 or a discarded reset; velocity must not read a reset as 0.
  const servedValid = isSane(prev.servedPackets, next.servedPackets, maxPackets);
  const cpuValid = isSane(prev.cpuUsageNs, next.cpuUsageNs, maxCpuNs);
  const velocity =
    cpuSpanned && servedValid && cpuValid && cpuNs >= o.minCpuNsForVelocity
      ? served / secondsFromNs(cpuNs)
      : null;

  let cpuDelayFraction: number | null = null;
  if (cpuSpanned && prev.cpuDelayNs !== undefined && next.cpuDelayNs !== undefined && cpuValid) {
    // PSI "some" is wall time and run_delay is per thread: both stay below this bound
    if (isSane(prev.cpuDelayNs, next.cpuDelayNs, maxCpuNs)) {
      const delayNs = next.cpuDelayNs - prev.cpuDelayNs;
      if (delayNs + cpuNs >= o.minNsForCpuDelay)
        cpuDelayFraction = clamp(delayNs / (delayNs + cpuNs), 0, 1);
    }
  }

  const tp: Throughput = {
    partition,
    windowMs,
    offeredPacketsPerSec: Math.max(offered, dropped) / windowSec,
    servedPacketsPerSec: served / windowSec,
    droppedPacketsPerSec: dropped / windowSec,
    cpuCores: cpuWindowMs > 0 ? cpuNs / (cpuWindowMs * 1e6) : 0,
    throttledFraction: periods > 0 ? clamp(throttled / periods, 0, 1) : 0,
    rawVelocityPacketsPerCpuSec: velocity,
    cpuDelayFraction,
    source,
  };
  const maxBytes = o.maxBytesPerSec * windowSec;
  if (prev.ingressBytes !== undefined && next.ingressBytes !== undefined)
    tp.ingressBytesPerSec =
      counterDelta(prev.ingressBytes, next.ingressBytes, maxBytes) / windowSec;
  if (prev.egressBytes !== undefined && next.egressBytes !== undefined)
    tp.egressBytesPerSec = counterDelta(prev.egressBytes, next.egressBytes, maxBytes) / windowSec;
  if (!cpuSpanned) tp.cpuWindowMs = Math.max(0, cpuWindowMs);
  return tp;
}

/**
 * A window in which the CPU counters were not read (`cpuWindowMs` 0) shows the CPU used of the
 * partition's previous window (`last`, itself measured or carried: at most the sensor's
 * `idleCpuReadEveryMs` old), not 0. `tp` is changed in place: the caller's own, just made.
 * Its `cpuWindowMs` stays 0, so a counter of CPU time (metrics) does not count it twice.
 */
export function carryCpuUsed(tp: Throughput, last: Throughput | null): Throughput {
  if (tp.cpuWindowMs === 0 && last !== null) tp.cpuCores = last.cpuCores;
  return tp;
}

const isSane = (prev: number, next: number, maxDelta: number): boolean => {
  const d = next - prev;
  return Number.isFinite(d) && d >= 0 && d <= maxDelta;
};

/**
 * An agent-fed partition's throughput with the congestion its cgroup on this host shows (the
 * QEMU process's cgroup of a guest): CFS throttling and CPU delay from `host` (a CPU-only
 * sample of that cgroup over the cycles between the same two reports), everything else from
 * `agent`. A guest's kernel never sees the periods its vCPU threads lost to the host's
 * throttling or spent waiting for a host CPU, so its report says "throttled 0 %" while capped.
 * CPU used (and so velocity) stays the agent's: under TCG the guest's own count includes the
 * time its vCPUs were runnable but waiting for a host CPU (its clock runs on). In one demo
 * run here a guest dropped 3–1,165 packets/s in 75 cycles while its QEMU cgroup used
 * 86–771m, under half its allocation, its threads waiting for a host CPU 29–89 % of the time:
 * the host's use understates what the guest needs.
 * A host window of 0 ms keeps the agent's.
 */
export function withHostCongestion(agent: Throughput, host: Throughput): Throughput {
  if (!(host.windowMs > 0)) return agent;
  return {
    ...agent,
    throttledFraction: host.throttledFraction,
    cpuDelayFraction: host.cpuDelayFraction ?? null,
    congestionFrom: "host",
  };
}
