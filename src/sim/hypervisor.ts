// The simulated hypervisor: cgroup v1 CPU bandwidth (CFS quota per period, burst, throttling),
// weights (cpu.shares) and the idle class (cpu.idle) over a fixed number of CPUs, on virtual
// time, tick by tick. It is an ActuatorBackend whose actuators are the real cgroup actuators'
// engine (src/actuators/engine.ts) over the v1 file format (src/cgroup/formats.ts), writing
// through `writeFile`: weir's manager writes directives to it exactly as it writes real cgroup
// files. The same kernel behaviours are modelled on purpose
// (a cgroup's files, their refusals and the refill on write are in cgroup.ts):
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
import { DEFAULT_PERIOD_USEC, IDLE_GROUP_SHARES } from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  type CgroupCpuStats,
  errnoError,
  newSimCgroup,
  readCgroupFile,
  refill,
  type SimCgroup,
  type Workload,
  WRITABLE,
  type WritableFile,
  writeCgroupFile,
} from "./cgroup.ts";
import type { Rng } from "./rng.ts";
import { cfsScratch, cfsShare } from "./waterfill.ts";

/**
 * The scheduler's base slice for `cpus` CPUs: 0.75 ms × (1 + log2(min(cpus, 8))), the
 * kernel's default sysctl_sched_base_slice (EEVDF; min_granularity before it) scaled by
 * SCHED_TUNABLESCALING_LOG. 1.5 ms on 2 CPUs.
 */
export const baseSliceNs = (cpus: number): number =>
  750_000 * (1 + Math.floor(Math.log2(Math.max(1, Math.min(cpus, 8)))));

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
    const n = Math.max(0, Math.min(parallelism, this.cpus));
    const g = newSimCgroup(path, workload, n, this.defaultPeriodUsec, this.nowNs);
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

  /** Read a file the way `cat` would: the cpu.* files, cpu.stat, cpuacct.usage. */
  readFile(path: string, file: string): string {
    return readCgroupFile(this.get(path), file);
  }

  /**
   * Write a file the way `echo v > file` would (cgroup.ts: counted even when unchanged; a
   * bandwidth write refills the period). Throws errno errors as cgroupfs does: ENODEV for a
   * removed cgroup, EINVAL for a value it refuses.
   */
  writeFile(path: string, file: string, value: string): void {
    const g = this.groups.get(path);
    if (!g) throw errnoError("ENODEV", `[sim] cgroup ${path} does not exist (ENODEV)`);
    writeCgroupFile(g, file, value, this.nowNs);
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
          refill(g);
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
