// The numbers cgroup CPU files hold: their ranges and defaults, the kernel's weight <-> shares
// conversion, a cap as a CFS quota, a burst, and the parsers of `cpu.max` and a period. Pure.
import {
  type CpuMillis,
  clamp,
  cpuMillisFromQuotaUsec,
  quotaUsecFromCpuMillis,
} from "../core/units.ts";

/** The kernel refuses a CFS quota below 1 ms (EINVAL); caps below that are raised to it. */
export const MIN_QUOTA_USEC = 1000;
/**
 * The least cap the kernel enforces at a period: MIN_QUOTA_USEC as millicores, rounded up.
 * 100000 us -> 1000 * 1000 / 100000 = 10m; 50000 us -> 20m; 1000 us -> 1000m.
 */
export function quotaFloorCpuMillis(periodUsec: number): CpuMillis {
  return Math.ceil(cpuMillisFromQuotaUsec(MIN_QUOTA_USEC, periodUsec));
}
/** Largest quota the kernel accepts: 2^44 - 1 us (kernel/sched/core.c max_cfs_runtime). */
export const MAX_QUOTA_USEC = 2 ** 44 - 1;
/** CFS period bounds (kernel: 1 ms .. 1 s); a period outside them is malformed. */
export const MIN_PERIOD_USEC = 1000;
export const MAX_PERIOD_USEC = 1_000_000;
/** Period of a freshly made cgroup. */
export const DEFAULT_PERIOD_USEC = 100_000;

/** cgroup v2 cpu.weight range and default. */
export const MIN_WEIGHT = 1;
export const MAX_WEIGHT = 10_000;
export const DEFAULT_WEIGHT = 100;
/** cgroup v1 cpu.shares range (the kernel clamps writes into it) and default. */
export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;
export const DEFAULT_SHARES = 1024;
/**
 * What v1 `cpu.shares` reads while `cpu.idle = 1`: the kernel's WEIGHT_IDLEPRIO, set by
 * sched_group_set_idle (v2 `cpu.weight` shows it as sharesToWeight(3) = 1). Leaving the idle
 * class resets the weight to the default.
 */
export const IDLE_GROUP_SHARES = 3;

/**
 * v2 weight (1..10000) to v1 shares (2..262144), the kernel's own conversion
 * (kernel/sched: sched_weight_from_cgroup = DIV_ROUND_CLOSEST(weight * 1024, 100); systemd's
 * cgroup_cpu_weight_to_shares uses the same 1024 : 100 ratio). Default maps to default
 * (100 -> 1024) and ratios are kept (200 : 100 -> 2048 : 1024), which is what a weight
 * "in proportion to the allocation" needs. The OCI runtimes' linear map
 * (shares = 2 + (weight - 1) * 262142 / 9999) was not used: it sends weight 100 to 2597
 * shares (2.5x an unmanaged sibling's default 1024) and weight 2 : 1 to 28 : 2.
 *   weightToShares(1) = round(10.24) = 10; weightToShares(10000) = 102400.
 */
export function weightToShares(weight: number): number {
  const w = clamp(Math.round(weight), MIN_WEIGHT, MAX_WEIGHT);
  return clamp(Math.round((w * DEFAULT_SHARES) / DEFAULT_WEIGHT), MIN_SHARES, MAX_SHARES);
}

/**
 * v1 shares to v2 weight, the kernel's inverse (sched_weight_to_cgroup =
 * clamp(DIV_ROUND_CLOSEST(shares * 100 / 1024), 1, 10000)). Exact inverse of weightToShares
 * for every weight 1..10000: shares lie within 0.5 of weight * 10.24, i.e. within 0.05 of
 * the weight once divided back.
 */
export function sharesToWeight(shares: number): number {
  return clamp(Math.round((shares * DEFAULT_WEIGHT) / DEFAULT_SHARES), MIN_WEIGHT, MAX_WEIGHT);
}

/**
 * Quota for a cap at a period: cpuMillis * period / 1000, rounded, raised to the kernel's
 * 1000 us minimum, bounded by its maximum. `null` means unlimited (a non-finite cap).
 *   250 millis at 100000 us -> 25000 us; 5 millis at 100000 us -> 500 -> 1000 us (= 10 millis).
 */
export function quotaUsecForCap(cpuMillis: CpuMillis, periodUsec: number): number | null {
  if (cpuMillis === Number.POSITIVE_INFINITY) return null;
  return clamp(
    quotaUsecFromCpuMillis(Math.max(0, cpuMillis), periodUsec),
    MIN_QUOTA_USEC,
    MAX_QUOTA_USEC,
  );
}

/**
 * Burst quota for a cap: the kernel refuses a burst above the quota (EINVAL), so it is
 * bounded by it; no cap, no burst. 50 millis burst on a 25000 us quota at 100 ms -> 5000 us.
 */
export function burstUsecFor(
  burstCpuMillis: CpuMillis,
  quotaUsec: number | null,
  periodUsec: number,
): number {
  if (quotaUsec === null || !(burstCpuMillis > 0)) return 0;
  return Math.min(quotaUsec, quotaUsecFromCpuMillis(burstCpuMillis, periodUsec));
}

/** A decimal integer as the kernel prints one. */
export const INT = /^-?\d+$/;

/** A CFS period (us) within the kernel's bounds, or null. */
export function parsePeriodUsec(text: string | undefined): number | null {
  if (text === undefined || !INT.test(text)) return null;
  const p = Number(text);
  return p >= MIN_PERIOD_USEC && p <= MAX_PERIOD_USEC ? p : null;
}

const CPU_MAX = /^(max|\d+) (\d+)$/;

/**
 * v2 `cpu.max`: "<quota> <period>" or "max <period>" -> quota (null = unlimited) and period;
 * null when the text is not that (a period out of bounds included).
 */
export function parseCpuMax(
  text: string | undefined,
): { quotaUsec: number | null; periodUsec: number } | null {
  const m = text === undefined ? null : CPU_MAX.exec(text);
  const periodUsec = parsePeriodUsec(m?.[2]);
  if (!m || periodUsec === null) return null;
  return { quotaUsec: m[1] === "max" ? null : Number(m[1]), periodUsec };
}

/** v1 `cpu.cfs_quota_us`: -1 = unlimited -> null; null as well when it is not an integer >= -1. */
export function parseCfsQuota(text: string | undefined): number | null {
  if (text === undefined || !INT.test(text)) return null;
  const q = Number(text);
  return q < 0 ? null : q;
}

/** [0, 1, 2, 3, 5] → "0-3,5" (the kernel's CPU list format). */
export function formatCpuList(cpus: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    const first = cpus[i]!;
    while (i + 1 < cpus.length && cpus[i + 1] === cpus[i]! + 1) i++;
    out.push(cpus[i] === first ? String(first) : `${first}-${cpus[i]}`);
  }
  return out.join(",");
}
