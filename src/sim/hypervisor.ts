// The simulated hypervisor: cgroup v1 CPU bandwidth (CFS quota per period, burst, throttling),
// weights (cpu.shares) and the idle class (cpu.idle) over a fixed number of CPUs, on virtual
// time, tick by tick. It is an ActuatorBackend whose actuators are the real cgroup actuators'
// engine (src/actuators/engine.ts) over the v1 file format (src/cgroup/formats.ts), writing
// through `writeFile`: weir's manager writes directives to it exactly as it writes real cgroup
// files. The same kernel behaviours are modelled on purpose:
//  - a group may use its runtime (`quota` per `period`, plus what it banked, at most `burst`),
//    then it is throttled to the period's end; each period refill adds `quota` to what is left
//    and keeps at most `quota + burst` (__refill_cfs_bandwidth_runtime);
//  - every write of cpu.cfs_quota_us, cpu.cfs_period_us or cpu.cfs_burst_us runs the same
//    refill (tg_set_cfs_bandwidth): without burst that refills the period's runtime (rewriting
//    the same 10 % quota every 20 ms gave 65 % of a CPU on the kernel);
//  - the kernel's EINVALs: burst above quota, shares written while cpu.idle = 1;
//  - busy CPUs are shared like CFS (`cfsShare`): normal-class groups by weighted max-min of
//    cpu.shares, work-conserving; idle-class groups only what the normal class leaves;
//  - a group waking up while same-class competitors keep every CPU busy waits for a running
//    one's slice before it runs (README.md: the wake-up wait);
//  - nr_periods counts periods in which a capped group was active, nr_throttled those in which
//    it ran out of runtime, throttled_time the time it spent runnable but throttled,
//    nr_bursts/burst_time the periods it used banked runtime and how much.
import {
  CGROUP_CAPABILITIES,
  cgroupTarget,
  dryRunPort,
  type FilePort,
  FileSetActuator,
} from "../actuators/engine.ts";
import type { ActuatorBackend, ActuatorTarget, CgroupTarget } from "../actuators/types.ts";
import { v1Format } from "../cgroup/formats.ts";
import {
  DEFAULT_PERIOD_USEC,
  DEFAULT_SHARES,
  IDLE_GROUP_SHARES,
  MAX_PERIOD_USEC,
  MAX_SHARES,
  MIN_PERIOD_USEC,
  MIN_QUOTA_USEC,
  MIN_SHARES,
} from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Rng } from "./rng.ts";
import { cfsScratch, cfsShare } from "./waterfill.ts";

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
const WRITABLE = [QUOTA_FILE, PERIOD_FILE, SHARES_FILE, BURST_FILE, IDLE_FILE] as const;
type WritableFile = (typeof WRITABLE)[number];

/** A failed write the way the kernel reports one: an errno the actuator engine classifies. */
function errnoError(code: string, message: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = code;
  return e;
}

/**
 * The scheduler's base slice for `cpus` CPUs: 0.75 ms × (1 + log2(min(cpus, 8))), the
 * kernel's default sysctl_sched_base_slice (EEVDF; min_granularity before it) scaled by
 * SCHED_TUNABLESCALING_LOG. 1.5 ms on 2 CPUs.
 */
export const baseSliceNs = (cpus: number): number =>
  750_000 * (1 + Math.floor(Math.log2(Math.max(1, Math.min(cpus, 8)))));

interface SimCgroup {
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

export interface SimHypervisorOptions {
  cpus: number;
  /** cpu.cfs_period_us of new cgroups (the kernel's default is 100000). */
  periodUsec?: number;
  /**
   * Longest wake-up wait behind a running same-class group (default `baseSliceNs(cpus)`;
   * 0 turns the wake-up wait off).
   */
  wakeupWaitMaxNs?: number;
  /** Draws each wake-up wait uniformly in [0, max]; without it every wait is max ÷ 2. */
  rng?: Rng;
}

export class SimHypervisor implements ActuatorBackend {
  readonly name = "sim";
  /** Its targets are its cgroups, named by path like the kernel's. */
  readonly handles = ["cgroup"] as const;
  readonly capabilities = CGROUP_CAPABILITIES;
  readonly cpus: number;
  private readonly defaultPeriodUsec: number;
  private readonly wakeupWaitMaxNs: number;
  private readonly rng: Rng | undefined;
  private readonly groups = new Map<string, SimCgroup>();
  private order: SimCgroup[] = [];
  private nowNs = 0;
  private busyNs = 0;
  private caps = new Float64Array(16);
  private weights = new Float64Array(16);
  private grants = new Float64Array(16);
  private wants = new Float64Array(16);
  private quotaBound = new Float64Array(16);
  private idles = new Uint8Array(16);
  private scratch = cfsScratch(16);

  constructor(opts: SimHypervisorOptions) {
    if (!(opts.cpus > 0)) throw new RangeError(`cpus must be > 0: got ${opts.cpus}`);
    this.cpus = opts.cpus;
    this.defaultPeriodUsec = opts.periodUsec ?? DEFAULT_PERIOD_USEC;
    this.wakeupWaitMaxNs = opts.wakeupWaitMaxNs ?? baseSliceNs(opts.cpus);
    if (!(this.wakeupWaitMaxNs >= 0))
      throw new RangeError(`wakeupWaitMaxNs must be >= 0: got ${opts.wakeupWaitMaxNs}`);
    this.rng = opts.rng;
  }

  /** Virtual time of the hypervisor (end of the last tick), ns. */
  now(): number {
    return this.nowNs;
  }

  /** Make a cgroup (no quota, no burst, 1024 shares, not idle, like mkdir in cgroupfs) running `workload` on up to `parallelism` CPUs. */
  createCgroup(path: string, workload: Workload | null, parallelism = this.cpus): void {
    if (this.groups.has(path)) throw new Error(`sim cgroup ${path} already exists`);
    const g: SimCgroup = {
      path,
      workload,
      parallelism: Math.max(0, Math.min(parallelism, this.cpus)),
      quotaUsec: -1,
      periodUsec: this.defaultPeriodUsec,
      shares: DEFAULT_SHARES,
      burstUsec: 0,
      idle: false,
      runtimeNs: 0,
      runtimeSnapNs: 0,
      asleep: true,
      wakeWaitNs: 0,
      periodEndNs: this.nowNs + this.defaultPeriodUsec * 1000,
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
    this.groups.set(path, g);
    this.order.push(g);
  }

  /** rmdir: later reads and writes fail with TARGET_GONE. */
  removeCgroup(path: string): void {
    const g = this.get(path);
    g.removed = true;
    this.groups.delete(path);
    this.order = this.order.filter((x) => x !== g);
  }

  has(path: string): boolean {
    return this.groups.has(path);
  }

  paths(): string[] {
    return this.order.map((g) => g.path);
  }

  private get(path: string): SimCgroup {
    const g = this.groups.get(path);
    if (!g) throw new WeirError(ErrorCodes.TARGET_GONE, `[sim] cgroup ${path} does not exist`);
    return g;
  }

  /** Read a file the way `cat` would: the cpu.* files above, cpu.stat, cpuacct.usage. */
  readFile(path: string, file: string): string {
    const g = this.get(path);
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
        throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `[sim] ${path}/${file}: no such file`);
    }
  }

  /**
   * __refill_cfs_bandwidth_runtime: add a quota to what is left, keep at most quota + burst.
   * Using more than one quota since the last refill counts as a burst.
   */
  private refill(g: SimCgroup): void {
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

  private einval(path: string, file: string, why: string): never {
    throw errnoError("EINVAL", `[sim] ${path}/${file}: ${why} (EINVAL)`);
  }

  /**
   * Write a file the way `echo v > file` would: the write always happens (and is counted),
   * even with an unchanged value. A quota, period or burst write runs the period refill.
   * Throws errno errors as the kernel's cgroupfs does: ENODEV for a removed cgroup, EINVAL for
   * a value it refuses.
   */
  writeFile(path: string, file: string, value: string): void {
    const g = this.groups.get(path);
    if (!g) throw errnoError("ENODEV", `[sim] cgroup ${path} does not exist (ENODEV)`);
    if (!(WRITABLE as readonly string[]).includes(file))
      this.einval(path, file, "not a writable file");
    const v = Number(value.trim());
    if (!Number.isInteger(v)) this.einval(path, file, `invalid value "${value}"`);
    const f = file as WritableFile;
    if (f === QUOTA_FILE) {
      if (v !== -1 && v < MIN_QUOTA_USEC)
        this.einval(path, file, `${v} is below ${MIN_QUOTA_USEC}`);
      if (v !== -1 && g.burstUsec > v)
        this.einval(path, file, `${v} is below cpu.cfs_burst_us ${g.burstUsec}`);
      const wasCapped = g.quotaUsec >= 0;
      g.quotaUsec = v;
      if (!wasCapped && v >= 0) {
        g.periodEndNs = this.nowNs + g.periodUsec * 1000;
        g.runtimeNs = 0;
        g.runtimeSnapNs = 0;
      }
    } else if (f === PERIOD_FILE) {
      if (v < MIN_PERIOD_USEC || v > MAX_PERIOD_USEC) this.einval(path, file, `${v} out of range`);
      g.periodUsec = v;
      g.periodEndNs = this.nowNs + v * 1000;
    } else if (f === BURST_FILE) {
      if (v < 0) this.einval(path, file, `${v} is negative`);
      if (g.quotaUsec >= 0 && v > g.quotaUsec)
        this.einval(path, file, `${v} is above cpu.cfs_quota_us ${g.quotaUsec}`);
      g.burstUsec = v;
    } else if (f === IDLE_FILE) {
      if (v !== 0 && v !== 1) this.einval(path, file, `${v} is not 0 or 1`);
      // sched_group_set_idle: the group's weight becomes WEIGHT_IDLEPRIO, or NICE_0 when unset.
      if (Boolean(v) !== g.idle) g.shares = DEFAULT_SHARES;
      g.idle = v === 1;
    } else {
      if (g.idle) this.einval(path, file, "the group is idle (cpu.idle = 1)");
      g.shares = Math.min(MAX_SHARES, Math.max(MIN_SHARES, v));
    }
    g.writes[f]++;
    // tg_set_cfs_bandwidth(): the period's runtime is refilled and throttled runqueues are released.
    if (f === QUOTA_FILE || f === PERIOD_FILE || f === BURST_FILE) this.refill(g);
  }

  /** Number of writes to `file` of `path` so far (also counts writes of unchanged values). */
  writeCount(path: string, file?: WritableFile): number {
    const g = this.get(path);
    return file ? g.writes[file] : WRITABLE.reduce((sum, f) => sum + g.writes[f], 0);
  }

  /** Current cap in millicores, or null when the cgroup has no quota. */
  capCpuMillis(path: string): number | null {
    const g = this.get(path);
    return g.quotaUsec < 0 ? null : (g.quotaUsec * 1000) / g.periodUsec;
  }

  /** Current burst in millicores (the cfs_burst_us per period), 0 when none. */
  burstCpuMillis(path: string): number {
    const g = this.get(path);
    return (g.burstUsec * 1000) / g.periodUsec;
  }

  /** cpu.shares as the kernel reads it (3 while idle). */
  shares(path: string): number {
    const g = this.get(path);
    return g.idle ? IDLE_GROUP_SHARES : g.shares;
  }

  isIdle(path: string): boolean {
    return this.get(path).idle;
  }

  /** CPU time every cgroup (removed ones included) used so far, ns: the machine's busy time. */
  busyCpuNs(): number {
    return this.busyNs;
  }

  stats(path: string): CgroupCpuStats {
    return { ...this.get(path).stats };
  }

  private grow(n: number): void {
    if (this.caps.length >= n) return;
    const size = Math.max(n, this.caps.length * 2);
    this.caps = new Float64Array(size);
    this.weights = new Float64Array(size);
    this.grants = new Float64Array(size);
    this.wants = new Float64Array(size);
    this.quotaBound = new Float64Array(size);
    this.idles = new Uint8Array(size);
    this.scratch = cfsScratch(size);
  }

  /** Run every cgroup's workload for one tick [now, now + tickNs). */
  tick(tickNs: number): void {
    const t = this.nowNs;
    const end = t + tickNs;
    const n = this.order.length;
    this.grow(n);
    const { caps, weights, grants, wants, quotaBound, idles } = this;
    let normalLimitSum = 0;
    for (let i = 0; i < n; i++) {
      const g = this.order[i]!;
      if (g.quotaUsec >= 0) {
        while (t >= g.periodEndNs) {
          if (g.activeThisPeriod) g.stats.nrPeriods++;
          if (g.throttledThisPeriod) g.stats.nrThrottled++;
          g.activeThisPeriod = false;
          g.throttledThisPeriod = false;
          this.refill(g);
          g.periodEndNs += g.periodUsec * 1000;
        }
      }
      // What its threads could run this tick, then what its runtime allows.
      const want = g.workload ? Math.min(g.workload.wantNs(t, tickNs), g.parallelism * tickNs) : 0;
      wants[i] = want;
      let cap = want;
      if (g.quotaUsec >= 0 && want > 0) {
        g.activeThisPeriod = true;
        cap = Math.min(want, Math.max(0, g.runtimeNs));
      }
      quotaBound[i] = cap;
      caps[i] = cap;
      weights[i] = g.idle ? IDLE_GROUP_SHARES : g.shares;
      idles[i] = g.idle ? 1 : 0;
      if (!g.idle) normalLimitSum += cap;
    }
    this.applyWakeupWaits(tickNs, normalLimitSum);
    cfsShare(this.cpus * tickNs, caps, weights, idles, grants, n, this.scratch);
    for (let i = 0; i < n; i++) {
      const g = this.order[i]!;
      const grant = grants[i]!;
      const want = wants[i]!;
      g.stats.usageNs += grant;
      // Runnable and allowed by the quota, but not running: waiting for a CPU.
      if (quotaBound[i]! > grant) g.stats.cpuDelayNs += quotaBound[i]! - grant;
      this.busyNs += grant;
      if (g.quotaUsec >= 0) {
        g.runtimeNs -= grant;
        // Held back by the quota (not by other groups): throttled for the part of the tick it could not run.
        if (want > 0 && quotaBound[i]! < want && grant >= quotaBound[i]! - 1e-6) {
          g.throttledThisPeriod = true;
          g.stats.throttledNs += tickNs * (1 - grant / want);
        }
      }
      g.workload?.run(grant, end);
      // Out of work (it got all it wanted): the next runnable tick is a wake-up.
      g.asleep = grant >= want - 1e-6;
    }
    this.nowNs = end;
  }

  /**
   * The wake-up wait: a normal-class group that wakes up while the other normal-class groups
   * could keep every CPU busy, at least one of them with its weight or more, starts only when
   * a running one's slice ends: a wait drawn uniformly in [0, base slice] (mean half a slice).
   * It cannot run during the wait; the CPU goes to the others. An idle-class competitor never
   * delays a normal one (the kernel preempts it at wake-up), and a heavier waker preempts at once.
   */
  private applyWakeupWaits(tickNs: number, normalLimitSum: number): void {
    if (this.wakeupWaitMaxNs <= 0) return;
    const capacity = this.cpus * tickNs;
    const { caps, weights } = this;
    const n = this.order.length;
    // The two largest weights among runnable normal-class groups: "someone else at least as heavy".
    let top = -1;
    let topW = Number.NEGATIVE_INFINITY;
    let secondW = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < n; j++) {
      if (this.order[j]!.idle || caps[j]! <= 0) continue;
      const w = weights[j]!;
      if (w > topW) {
        secondW = topW;
        topW = w;
        top = j;
      } else if (w > secondW) secondW = w;
    }
    for (let i = 0; i < n; i++) {
      const g = this.order[i]!;
      if (g.idle || caps[i]! <= 0) {
        if (caps[i]! <= 0) g.wakeWaitNs = 0;
        continue;
      }
      if (g.asleep && g.wakeWaitNs <= 0 && normalLimitSum - caps[i]! >= capacity - 1e-6) {
        const heaviestOther = i === top ? secondW : topW;
        if (heaviestOther >= weights[i]!)
          g.wakeWaitNs = this.wakeupWaitMaxNs * (this.rng ? this.rng.next() : 0.5);
      }
      if (g.wakeWaitNs > 0) {
        const waitNs = Math.min(g.wakeWaitNs, tickNs);
        g.wakeWaitNs -= waitNs;
        caps[i] = Math.min(caps[i]!, g.parallelism * (tickNs - waitNs));
      }
    }
  }

  /**
   * ActuatorBackend: the sim's "cgroup path" is the partition's cgroup name. The actuator is the
   * real engine over the v1 format, writing through writeFile: it writes only values that
   * changed, in the order the kernel accepts (`v1Format.plan`), at the cgroup's own period.
   * Throws TARGET_GONE when the cgroup does not exist.
   */
  open(t: ActuatorTarget): FileSetActuator {
    const target = cgroupTarget(this.name, t);
    return this.actuator(target, {
      write: (file, value) => this.writeFile(target.cgroup, file, value),
      close: () => {},
    });
  }

  /** What open() would write to the simulated cgroup, decided but not written. */
  openDryRun(t: ActuatorTarget): FileSetActuator {
    return this.actuator(cgroupTarget(this.name, t), dryRunPort(), " (dry run)");
  }

  private actuator(target: CgroupTarget, port: FilePort, suffix = ""): FileSetActuator {
    const found: Record<string, string> = {};
    for (const file of v1Format.snapshotFiles)
      found[file] = this.readFile(target.cgroup, file).trim();
    return new FileSetActuator({
      backend: `${this.name}${suffix}`,
      partition: target.partition,
      location: `sim:${target.cgroup}`,
      format: v1Format,
      found,
      port,
    });
  }
}
