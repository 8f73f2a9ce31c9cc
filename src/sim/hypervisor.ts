// The simulated hypervisor: cgroup v1 CPU bandwidth (CFS quota per period, throttling) and
// weights (cpu.shares) over a fixed number of CPUs, on virtual time, tick by tick.
// It is an ActuatorBackend, so weir's manager writes allocations to it exactly as it writes
// real cgroup files; the same kernel behaviours are modelled on purpose:
//  - a group may use `quota` of CPU time per `period`, then it is throttled to the period's end;
//  - every write of cpu.cfs_quota_us or cpu.cfs_period_us refills the current period's runtime
//    (FACTS.md: rewriting the same 10 % quota every 20 ms gave 65 % of a CPU);
//  - busy CPUs are shared among runnable groups in proportion to cpu.shares;
//  - nr_periods counts periods in which a capped group was active, nr_throttled those in which
//    it ran out of runtime, throttled_time the time it spent runnable but throttled.
import type {
  ActuatorBackend,
  ActuatorTarget,
  AllocationSnapshot,
  PartitionActuator,
} from "../actuators/types.ts";
import { ErrorCodes, isWeirError, WeirError } from "../core/errors.ts";
import type { ApplyResult, Directive } from "../core/model.ts";
import { quotaUsecFromCpuMillis } from "../core/units.ts";
import { waterfill } from "./waterfill.ts";

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
}

export const QUOTA_FILE = "cpu.cfs_quota_us";
export const PERIOD_FILE = "cpu.cfs_period_us";
export const SHARES_FILE = "cpu.shares";
const WRITABLE = [QUOTA_FILE, PERIOD_FILE, SHARES_FILE] as const;
type WritableFile = (typeof WRITABLE)[number];

/** cgroup v2 weight (1..10000, default 100) to v1 shares (2..262144, default 1024), proportionally. */
export const sharesFromWeight = (weight: number): number =>
  Math.min(262_144, Math.max(2, Math.round((weight * 1024) / 100)));

interface SimCgroup {
  path: string;
  workload: Workload | null;
  parallelism: number;
  quotaUsec: number;
  periodUsec: number;
  shares: number;
  runtimeNs: number;
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
}

export class SimHypervisor implements ActuatorBackend {
  readonly name = "sim";
  readonly handles = ["sim"] as const;
  readonly cpus: number;
  private readonly defaultPeriodUsec: number;
  private readonly groups = new Map<string, SimCgroup>();
  private order: SimCgroup[] = [];
  private nowNs = 0;
  private busyNs = 0;
  private caps = new Float64Array(16);
  private weights = new Float64Array(16);
  private grants = new Float64Array(16);
  private wants = new Float64Array(16);

  constructor(opts: SimHypervisorOptions) {
    if (!(opts.cpus > 0)) throw new RangeError(`cpus must be > 0: got ${opts.cpus}`);
    this.cpus = opts.cpus;
    this.defaultPeriodUsec = opts.periodUsec ?? 100_000;
  }

  /** Virtual time of the hypervisor (end of the last tick), ns. */
  now(): number {
    return this.nowNs;
  }

  /** Make a cgroup (no quota, 1024 shares, like mkdir in cgroupfs) running `workload` on up to `parallelism` CPUs. */
  createCgroup(path: string, workload: Workload | null, parallelism = this.cpus): void {
    if (this.groups.has(path)) throw new Error(`sim cgroup ${path} already exists`);
    const g: SimCgroup = {
      path,
      workload,
      parallelism: Math.max(0, Math.min(parallelism, this.cpus)),
      quotaUsec: -1,
      periodUsec: this.defaultPeriodUsec,
      shares: 1024,
      runtimeNs: 0,
      periodEndNs: this.nowNs + this.defaultPeriodUsec * 1000,
      activeThisPeriod: false,
      throttledThisPeriod: false,
      stats: { usageNs: 0, nrPeriods: 0, nrThrottled: 0, throttledNs: 0 },
      writes: { [QUOTA_FILE]: 0, [PERIOD_FILE]: 0, [SHARES_FILE]: 0 },
      removed: false,
    };
    this.groups.set(path, g);
    this.order.push(g);
  }

  /** rmdir: later reads and writes fail with CGROUP_GONE. */
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
    if (!g) throw new WeirError(ErrorCodes.CGROUP_GONE, `[sim] cgroup ${path} does not exist`);
    return g;
  }

  /** Read a file the way `cat` would: cpu.cfs_quota_us, cpu.cfs_period_us, cpu.shares, cpu.stat, cpuacct.usage. */
  readFile(path: string, file: string): string {
    const g = this.get(path);
    switch (file) {
      case QUOTA_FILE:
        return `${g.quotaUsec}\n`;
      case PERIOD_FILE:
        return `${g.periodUsec}\n`;
      case SHARES_FILE:
        return `${g.shares}\n`;
      case "cpuacct.usage":
        return `${Math.round(g.stats.usageNs)}\n`;
      case "cpu.stat":
        return `nr_periods ${g.stats.nrPeriods}\nnr_throttled ${g.stats.nrThrottled}\nthrottled_time ${Math.round(g.stats.throttledNs)}\n`;
      default:
        throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `[sim] ${path}/${file}: no such file`);
    }
  }

  /**
   * Write a file the way `echo v > file` would: the write always happens (and is counted),
   * even with an unchanged value. A quota or period write refills the period's runtime.
   */
  writeFile(path: string, file: string, value: string): void {
    const g = this.get(path);
    if (!(WRITABLE as readonly string[]).includes(file))
      throw new WeirError(ErrorCodes.CGROUP_WRITE_FAILED, `[sim] ${path}/${file}: not writable`);
    const v = Number(value.trim());
    if (!Number.isInteger(v))
      throw new WeirError(
        ErrorCodes.CGROUP_WRITE_FAILED,
        `[sim] ${path}/${file}: invalid value "${value}"`,
      );
    const f = file as WritableFile;
    if (f === QUOTA_FILE) {
      if (v !== -1 && v < 1000)
        throw new WeirError(
          ErrorCodes.CGROUP_WRITE_FAILED,
          `[sim] ${path}/${file}: ${v} is below 1000 (EINVAL)`,
        );
      const wasCapped = g.quotaUsec >= 0;
      g.quotaUsec = v;
      if (!wasCapped) g.periodEndNs = this.nowNs + g.periodUsec * 1000;
    } else if (f === PERIOD_FILE) {
      if (v < 1000 || v > 1_000_000)
        throw new WeirError(
          ErrorCodes.CGROUP_WRITE_FAILED,
          `[sim] ${path}/${file}: ${v} out of range (EINVAL)`,
        );
      g.periodUsec = v;
      g.periodEndNs = this.nowNs + v * 1000;
    } else {
      g.shares = Math.min(262_144, Math.max(2, v));
    }
    g.writes[f]++;
    // tg_set_cfs_bandwidth(): the period's runtime is refilled and throttled runqueues are released.
    if (f !== SHARES_FILE && g.quotaUsec >= 0) g.runtimeNs = g.quotaUsec * 1000;
  }

  /** Number of writes to `file` of `path` so far (also counts writes of unchanged values). */
  writeCount(path: string, file?: WritableFile): number {
    const g = this.get(path);
    return file
      ? g.writes[file]
      : g.writes[QUOTA_FILE] + g.writes[PERIOD_FILE] + g.writes[SHARES_FILE];
  }

  /** Current cap in millicores, or null when the cgroup has no quota. */
  capCpuMillis(path: string): number | null {
    const g = this.get(path);
    return g.quotaUsec < 0 ? null : (g.quotaUsec * 1000) / g.periodUsec;
  }

  shares(path: string): number {
    return this.get(path).shares;
  }

  /** CPU time every cgroup (removed ones included) used so far, ns: the machine's busy time. */
  busyCpuNs(): number {
    return this.busyNs;
  }

  stats(path: string): CgroupCpuStats {
    return { ...this.get(path).stats };
  }

  /** Run every cgroup's workload for one tick [now, now + tickNs). */
  tick(tickNs: number): void {
    const t = this.nowNs;
    const end = t + tickNs;
    const n = this.order.length;
    if (this.caps.length < n) {
      const size = Math.max(n, this.caps.length * 2);
      this.caps = new Float64Array(size);
      this.weights = new Float64Array(size);
      this.grants = new Float64Array(size);
      this.wants = new Float64Array(size);
    }
    const { caps, weights, grants, wants } = this;
    for (let i = 0; i < n; i++) {
      const g = this.order[i]!;
      if (g.quotaUsec >= 0) {
        while (t >= g.periodEndNs) {
          if (g.activeThisPeriod) g.stats.nrPeriods++;
          if (g.throttledThisPeriod) g.stats.nrThrottled++;
          g.activeThisPeriod = false;
          g.throttledThisPeriod = false;
          g.runtimeNs = g.quotaUsec * 1000;
          g.periodEndNs += g.periodUsec * 1000;
        }
      }
      const want = g.workload ? Math.min(g.workload.wantNs(t, tickNs), g.parallelism * tickNs) : 0;
      wants[i] = want;
      let cap = want;
      if (g.quotaUsec >= 0 && want > 0) {
        g.activeThisPeriod = true;
        cap = Math.min(want, Math.max(0, g.runtimeNs));
      }
      caps[i] = cap;
      weights[i] = g.shares;
    }
    waterfill(this.cpus * tickNs, caps, weights, grants, n);
    for (let i = 0; i < n; i++) {
      const g = this.order[i]!;
      const grant = grants[i]!;
      g.stats.usageNs += grant;
      this.busyNs += grant;
      if (g.quotaUsec >= 0) {
        g.runtimeNs -= grant;
        const want = wants[i]!;
        // Held back by the quota (not by other groups): throttled for the part of the tick it could not run.
        if (want > 0 && caps[i]! < want && grant >= caps[i]! - 1e-6) {
          g.throttledThisPeriod = true;
          g.stats.throttledNs += tickNs * (1 - grant / want);
        }
      }
      g.workload?.run(grant, end);
    }
    this.nowNs = end;
  }

  /** ActuatorBackend: the sim's "cgroup path" is the partition's cgroup name. */
  open(target: ActuatorTarget): PartitionActuator {
    this.get(target.cgroup);
    return new SimCgroupActuator(this, target);
  }
}

/** Writes directives to a sim cgroup; like the real actuators, only values that differ are written. */
export class SimCgroupActuator implements PartitionActuator {
  readonly partition: string;
  private readonly hv: SimHypervisor;
  private readonly cgroup: string;
  private closed = false;

  constructor(hv: SimHypervisor, target: ActuatorTarget) {
    this.hv = hv;
    this.partition = target.partition;
    this.cgroup = target.cgroup;
  }

  private read(file: string): string {
    return this.hv.readFile(this.cgroup, file).trim();
  }

  snapshot(): AllocationSnapshot {
    return {
      partition: this.partition,
      values: {
        [PERIOD_FILE]: this.read(PERIOD_FILE),
        [QUOTA_FILE]: this.read(QUOTA_FILE),
        [SHARES_FILE]: this.read(SHARES_FILE),
      },
    };
  }

  private writeChanged(values: Array<[string, string]>): ApplyResult {
    const written: string[] = [];
    try {
      if (this.closed)
        throw new WeirError(
          ErrorCodes.CGROUP_WRITE_FAILED,
          `[sim] ${this.cgroup}: actuator closed`,
        );
      for (const [file, value] of values) {
        if (this.read(file) === value) continue;
        this.hv.writeFile(this.cgroup, file, value);
        written.push(file);
      }
      return { partition: this.partition, written };
    } catch (err) {
      const error = isWeirError(err)
        ? err.toInfo()
        : { code: ErrorCodes.CGROUP_WRITE_FAILED, message: String(err), retryable: true };
      return { partition: this.partition, written, error };
    }
  }

  apply(directive: Directive): ApplyResult {
    let periodUsec: number;
    try {
      periodUsec = Number(this.read(PERIOD_FILE));
    } catch (err) {
      return {
        partition: this.partition,
        written: [],
        error: isWeirError(err)
          ? err.toInfo()
          : { code: ErrorCodes.CGROUP_GONE, message: String(err), retryable: false },
      };
    }
    const quota = Math.max(1000, quotaUsecFromCpuMillis(directive.cpuMillis, periodUsec));
    return this.writeChanged([
      [QUOTA_FILE, String(quota)],
      [SHARES_FILE, String(sharesFromWeight(directive.weight))],
    ]);
  }

  restore(snapshot: AllocationSnapshot): ApplyResult {
    const order = [PERIOD_FILE, QUOTA_FILE, SHARES_FILE];
    const values = order
      .filter((f) => snapshot.values[f] !== undefined)
      .map((f): [string, string] => [f, snapshot.values[f]!]);
    return this.writeChanged(values);
  }

  close(): void {
    this.closed = true;
  }
}
