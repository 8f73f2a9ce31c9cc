// One simulated cgroup (v1 cpu + cpuacct) as cgroupfs shows it: its state, the files `cat`
// reads, and the writes `echo` makes, with the kernel's refusals (EINVAL, ENODEV) and the
// period refill every bandwidth write runs. The scheduler over these groups is hypervisor.ts.
import {
  DEFAULT_SHARES,
  IDLE_GROUP_SHARES,
  MAX_PERIOD_USEC,
  MAX_SHARES,
  MIN_PERIOD_USEC,
  MIN_QUOTA_USEC,
  MIN_SHARES,
} from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";

/** Something that runs inside a cgroup: it says how much CPU it could use and then uses what it got. */
export interface Workload {
  /** CPU time (ns) it could use during the tick [tNs, tNs + tickNs) if nothing held it back. */
  wantNs(tNs: number, tickNs: number): number;
  /** It ran for `grantNs` of CPU time during the tick that ends at `tEndNs`. */
  run(grantNs: number, tEndNs: number): void;
}

/** Cumulative CPU counters of one cgroup (cpuacct.usage and cpu.stat). */
export interface CgroupCpuStats {
  usageNs: number;
  nrPeriods: number;
  nrThrottled: number;
  throttledNs: number;
  /** Refills after which the group had used more than one quota since the last (cpu.stat nr_bursts). */
  nrBursts: number;
  /** CPU time used above the quota out of banked runtime, ns (cpu.stat burst_time). */
  burstNs: number;
  /**
   * Time runnable but not running for want of a CPU (other groups, the wake-up wait), summed
   * over the group's threads, ns: what `run_delay` in /proc/<tid>/schedstat adds up. Time held
   * back by the quota is throttled time, not counted here.
   */
  cpuDelayNs: number;
}

const QUOTA_FILE = "cpu.cfs_quota_us";
const PERIOD_FILE = "cpu.cfs_period_us";
const SHARES_FILE = "cpu.shares";
const BURST_FILE = "cpu.cfs_burst_us";
const IDLE_FILE = "cpu.idle";
export const WRITABLE = [QUOTA_FILE, PERIOD_FILE, SHARES_FILE, BURST_FILE, IDLE_FILE] as const;
export type WritableFile = (typeof WRITABLE)[number];

/** A failed write the way the kernel reports one: an errno the actuator engine classifies. */
export function errnoError(code: string, message: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = code;
  return e;
}

export interface SimCgroup {
  path: string;
  workload: Workload | null;
  parallelism: number;
  quotaUsec: number;
  periodUsec: number;
  shares: number;
  burstUsec: number;
  idle: boolean;
  runtimeNs: number;
  /** Runtime right after the last refill (the kernel's runtime_snap), for the burst statistics. */
  runtimeSnapNs: number;
  /** It ran out of work in the last tick: runnable again means a wake-up. */
  asleep: boolean;
  /** Wake-up wait still to serve, ns. */
  wakeWaitNs: number;
  periodEndNs: number;
  activeThisPeriod: boolean;
  throttledThisPeriod: boolean;
  stats: CgroupCpuStats;
  writes: Record<WritableFile, number>;
  removed: boolean;
}

/** A fresh cgroup as mkdir makes it: no quota, no burst, 1024 shares, not idle. */
export function newSimCgroup(
  path: string,
  workload: Workload | null,
  parallelism: number,
  periodUsec: number,
  nowNs: number,
): SimCgroup {
  return {
    path,
    workload,
    parallelism,
    quotaUsec: -1,
    periodUsec,
    shares: DEFAULT_SHARES,
    burstUsec: 0,
    idle: false,
    runtimeNs: 0,
    runtimeSnapNs: 0,
    asleep: true,
    wakeWaitNs: 0,
    periodEndNs: nowNs + periodUsec * 1000,
    activeThisPeriod: false,
    throttledThisPeriod: false,
    stats: {
      usageNs: 0,
      nrPeriods: 0,
      nrThrottled: 0,
      throttledNs: 0,
      nrBursts: 0,
      burstNs: 0,
      cpuDelayNs: 0,
    },
    writes: {
      [QUOTA_FILE]: 0,
      [PERIOD_FILE]: 0,
      [SHARES_FILE]: 0,
      [BURST_FILE]: 0,
      [IDLE_FILE]: 0,
    },
    removed: false,
  };
}

/** Read a file the way `cat` would: the cpu.* files above, cpu.stat, cpuacct.usage. */
export function readCgroupFile(g: SimCgroup, file: string): string {
  switch (file) {
    case QUOTA_FILE:
      return `${g.quotaUsec}\n`;
    case PERIOD_FILE:
      return `${g.periodUsec}\n`;
    case SHARES_FILE:
      return `${g.idle ? IDLE_GROUP_SHARES : g.shares}\n`;
    case BURST_FILE:
      return `${g.burstUsec}\n`;
    case IDLE_FILE:
      return `${g.idle ? 1 : 0}\n`;
    case "cpuacct.usage":
      return `${Math.round(g.stats.usageNs)}\n`;
    case "cpu.stat":
      return `nr_periods ${g.stats.nrPeriods}\nnr_throttled ${g.stats.nrThrottled}\nthrottled_time ${Math.round(g.stats.throttledNs)}\nnr_bursts ${g.stats.nrBursts}\nburst_time ${Math.round(g.stats.burstNs)}\n`;
    default:
      throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `[sim] ${g.path}/${file}: no such file`);
  }
}

/**
 * __refill_cfs_bandwidth_runtime: add a quota to what is left, keep at most quota + burst.
 * Using more than one quota since the last refill counts as a burst.
 */
export function refill(g: SimCgroup): void {
  if (g.quotaUsec < 0) return;
  const quotaNs = g.quotaUsec * 1000;
  const runtime = g.runtimeNs + quotaNs;
  const overQuotaNs = g.runtimeSnapNs - runtime;
  if (overQuotaNs > 1e-6) {
    g.stats.burstNs += overQuotaNs;
    g.stats.nrBursts++;
  }
  g.runtimeNs = Math.min(runtime, quotaNs + g.burstUsec * 1000);
  g.runtimeSnapNs = g.runtimeNs;
}

function einval(path: string, file: string, why: string): never {
  throw errnoError("EINVAL", `[sim] ${path}/${file}: ${why} (EINVAL)`);
}

/**
 * Write a file the way `echo v > file` would, at virtual time `nowNs`: the write always
 * happens (and is counted), even with an unchanged value. A quota, period or burst write runs
 * the period refill. Throws EINVAL errno errors for a value the kernel refuses.
 */
export function writeCgroupFile(g: SimCgroup, file: string, value: string, nowNs: number): void {
  const path = g.path;
  if (!(WRITABLE as readonly string[]).includes(file)) einval(path, file, "not a writable file");
  const v = Number(value.trim());
  if (!Number.isInteger(v)) einval(path, file, `invalid value "${value}"`);
  const f = file as WritableFile;
  if (f === QUOTA_FILE) {
    if (v !== -1 && v < MIN_QUOTA_USEC) einval(path, file, `${v} is below ${MIN_QUOTA_USEC}`);
    if (v !== -1 && g.burstUsec > v)
      einval(path, file, `${v} is below cpu.cfs_burst_us ${g.burstUsec}`);
    const wasCapped = g.quotaUsec >= 0;
    g.quotaUsec = v;
    if (!wasCapped && v >= 0) {
      g.periodEndNs = nowNs + g.periodUsec * 1000;
      g.runtimeNs = 0;
      g.runtimeSnapNs = 0;
    }
  } else if (f === PERIOD_FILE) {
    if (v < MIN_PERIOD_USEC || v > MAX_PERIOD_USEC) einval(path, file, `${v} out of range`);
    g.periodUsec = v;
    g.periodEndNs = nowNs + v * 1000;
  } else if (f === BURST_FILE) {
    if (v < 0) einval(path, file, `${v} is negative`);
    if (g.quotaUsec >= 0 && v > g.quotaUsec)
      einval(path, file, `${v} is above cpu.cfs_quota_us ${g.quotaUsec}`);
    g.burstUsec = v;
  } else if (f === IDLE_FILE) {
    if (v !== 0 && v !== 1) einval(path, file, `${v} is not 0 or 1`);
    // sched_group_set_idle: the group's weight becomes WEIGHT_IDLEPRIO, or NICE_0 when unset.
    if (Boolean(v) !== g.idle) g.shares = DEFAULT_SHARES;
    g.idle = v === 1;
  } else {
    if (g.idle) einval(path, file, "the group is idle (cpu.idle = 1)");
    g.shares = Math.min(MAX_SHARES, Math.max(MIN_SHARES, v));
  }
  g.writes[f]++;
  // tg_set_cfs_bandwidth(): the period's runtime is refilled and throttled runqueues are released.
  if (f === QUOTA_FILE || f === PERIOD_FILE || f === BURST_FILE) refill(g);
}
