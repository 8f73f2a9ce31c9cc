// Unit helpers. Every quantity carries its unit in its name; convert only here.

/** Millicores of CPU: 1000 = one full CPU. */
export type CpuMillis = number;

export const MILLIS_PER_CPU = 1000;

export const cpuMillisFromCores = (cores: number): CpuMillis => cores * MILLIS_PER_CPU;
export const coresFromCpuMillis = (millis: CpuMillis): number => millis / MILLIS_PER_CPU;

export const secondsFromMs = (ms: number): number => ms / 1000;
export const msFromNs = (ns: number): number => ns / 1e6;
export const secondsFromNs = (ns: number): number => ns / 1e9;
export const secondsFromUsec = (usec: number): number => usec / 1e6;
export const nsFromUsec = (usec: number): number => usec * 1000;

/** Quota in microseconds per period for an allocation: 250 millis at 100_000 us = 25_000 us. */
export const quotaUsecFromCpuMillis = (millis: CpuMillis, periodUsec: number): number =>
  Math.round((millis * periodUsec) / MILLIS_PER_CPU);
export const cpuMillisFromQuotaUsec = (quotaUsec: number, periodUsec: number): CpuMillis =>
  (quotaUsec * MILLIS_PER_CPU) / periodUsec;

/**
 * Rate from two readings of a cumulative counter. A counter that went backwards
 * (reset: interface re-created, cgroup re-made) or jumped by more than `maxDelta`
 * (wrap of a 32-bit counter, garbage) gives 0 for this window, never a negative or
 * huge rate.
 */
export function counterDelta(prev: number, next: number, maxDelta = 2 ** 48): number {
  const d = next - prev;
  if (!Number.isFinite(d) || d < 0 || d > maxDelta) return 0;
  return d;
}

export const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
