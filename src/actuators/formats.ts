// What a directive looks like in cgroup files, for cgroup v1 and v2. Pure: no I/O.
//
// A format names the files a backend holds, parses what it found (the period), and turns a
// directive into the exact text each file should hold. The engine (engine.ts) compares that
// text with what the file held last and writes only the ones that differ.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Directive } from "../core/model.ts";
import { type CpuMillis, clamp, quotaUsecFromCpuMillis } from "../core/units.ts";

/** The kernel refuses a CFS quota below 1 ms (EINVAL); caps below that are raised to it. */
export const MIN_QUOTA_USEC = 1000;
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
 * A directive the backends can write: cap a number or +Infinity (no cap), burst a finite
 * number >= 0, weight finite.
 */
export function checkDirective(d: Directive): string | null {
  if (Number.isNaN(d.capCpuMillis) || d.capCpuMillis === Number.NEGATIVE_INFINITY)
    return `capCpuMillis must be a number >= 0 or Infinity (no cap): current value is ${d.capCpuMillis}`;
  if (!Number.isFinite(d.weight))
    return `weight must be a finite number (1..10000): current value is ${d.weight}`;
  if (!(d.burstCpuMillis >= 0) || !Number.isFinite(d.burstCpuMillis))
    return `burstCpuMillis must be a finite number >= 0: current value is ${d.burstCpuMillis}`;
  return null;
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

/** Files and their meaning for one cgroup layout. */
export interface CpuFileFormat {
  /** "cgroup-v1" | "cgroup-v2": names the layout in messages. */
  readonly layout: "cgroup-v1" | "cgroup-v2";
  /** Files written by apply(), held open (cap, weight, and the optional ones the cgroup has). */
  readonly heldFiles: readonly string[];
  /** Every file in a snapshot (a superset of heldFiles). */
  readonly snapshotFiles: readonly string[];
  /**
   * Files older kernels lack (idle class: Linux 5.15; CFS burst: 5.14). A cgroup without them
   * still opens; the directive is then expressed without them (batch at the minimum weight).
   */
  readonly optionalFiles: readonly string[];
  /** The files that carry the cap, the weight, the idle class and the burst. */
  readonly capFile: string;
  readonly weightFile: string;
  readonly idleFile: string;
  readonly burstFile: string;
  /**
   * The order to write `values` in, given what the files hold now, leaving out what must not be
   * written: the weight of a group in the idle class (the kernel refuses it: EINVAL) and files
   * the cgroup does not have. Idle before weight (leaving the idle class resets the weight);
   * burst before the cap when the burst shrinks, after it otherwise (burst <= quota always).
   */
  plan(
    values: Readonly<Record<string, string>>,
    current: Readonly<Record<string, string>>,
  ): string[];
  /** What a freshly made cgroup holds (trimmed, as the kernel prints it). */
  readonly freshValues: Readonly<Record<string, string>>;
  /** Check found values; returns a message naming the file and the bad value, or null. */
  validate(values: Readonly<Record<string, string>>): string | null;
  /** The text each held file should hold for `directive`, given what the files hold now. */
  desired(directive: Directive, current: Readonly<Record<string, string>>): Record<string, string>;
  /** The cap, period and weight that `values` express (weight on the v2 scale). */
  describe(values: Readonly<Record<string, string>>): AllocationView;
}

/** An allocation as files express it, on common scales (for tests, dry-run output, status). */
export interface AllocationView {
  /** null = unlimited. */
  quotaUsec: number | null;
  periodUsec: number;
  /** Weight on the v2 scale 1..10000 (v1 shares converted by sharesToWeight). */
  weight: number;
  /** In the idle class (present only when the cgroup has the idle file). */
  idle?: boolean;
  /** CFS burst, us (present only when the cgroup has the burst file). */
  burstUsec?: number;
}

/** Only "0" or "1". */
const IDLE = /^[01]$/;

/** Checks of the optional files, when present. */
function validateOptional(
  v: Readonly<Record<string, string>>,
  idleFile: string,
  burstFile: string,
): string | null {
  const idle = v[idleFile];
  if (idle !== undefined && !IDLE.test(idle)) return `${idleFile} must be 0 or 1: found "${idle}"`;
  const burst = v[burstFile];
  if (burst !== undefined && (!INT.test(burst) || Number(burst) < 0))
    return `${burstFile} must be an integer >= 0: found "${burst}"`;
  return null;
}

/** describe()'s optional part: idle and burst when the files are there. */
function describeOptional(
  v: Readonly<Record<string, string>>,
  idleFile: string,
  burstFile: string,
): Pick<AllocationView, "idle" | "burstUsec"> {
  const out: Pick<AllocationView, "idle" | "burstUsec"> = {};
  if (v[idleFile] !== undefined) out.idle = v[idleFile] === "1";
  if (v[burstFile] !== undefined) out.burstUsec = Number(v[burstFile]);
  return out;
}

/** The write order shared by both layouts (see CpuFileFormat.plan). */
function planWrites(
  f: Pick<CpuFileFormat, "capFile" | "weightFile" | "idleFile" | "burstFile">,
  values: Readonly<Record<string, string>>,
  current: Readonly<Record<string, string>>,
): string[] {
  const has = (file: string) => values[file] !== undefined;
  const optionalMissing = (file: string) => current[file] === undefined;
  const known = [f.capFile, f.weightFile, f.idleFile, f.burstFile];
  // anything else first (v1 cpu.cfs_period_us, which only restore writes)
  const out: string[] = Object.keys(values).filter((file) => !known.includes(file));
  const burst = has(f.burstFile) && !optionalMissing(f.burstFile);
  const burstFirst = burst && Number(values[f.burstFile]) < Number(current[f.burstFile]);
  if (burstFirst) out.push(f.burstFile);
  if (has(f.capFile)) out.push(f.capFile);
  if (burst && !burstFirst) out.push(f.burstFile);
  const idleKnown = has(f.idleFile) && !optionalMissing(f.idleFile);
  if (idleKnown) out.push(f.idleFile);
  // the idle state after these writes: a weight written to an idle group is refused
  const idleAfter = idleKnown ? values[f.idleFile] === "1" : current[f.idleFile] === "1";
  if (has(f.weightFile) && !idleAfter) out.push(f.weightFile);
  return out;
}

const INT = /^-?\d+$/;

function parsePeriod(text: string | undefined): number | null {
  if (text === undefined || !INT.test(text)) return null;
  const p = Number(text);
  return p >= MIN_PERIOD_USEC && p <= MAX_PERIOD_USEC ? p : null;
}

/** cgroup v1: cpu.cfs_period_us, cpu.cfs_quota_us (-1 = unlimited), cpu.shares. */
export const v1Format: CpuFileFormat = {
  layout: "cgroup-v1",
  heldFiles: ["cpu.cfs_quota_us", "cpu.shares", "cpu.cfs_burst_us", "cpu.idle"],
  snapshotFiles: [
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.shares",
    "cpu.cfs_burst_us",
    "cpu.idle",
  ],
  optionalFiles: ["cpu.cfs_burst_us", "cpu.idle"],
  capFile: "cpu.cfs_quota_us",
  weightFile: "cpu.shares",
  idleFile: "cpu.idle",
  burstFile: "cpu.cfs_burst_us",
  freshValues: {
    "cpu.cfs_period_us": "100000",
    "cpu.cfs_quota_us": "-1",
    "cpu.shares": "1024",
    "cpu.cfs_burst_us": "0",
    "cpu.idle": "0",
  },
  plan(values, current) {
    return planWrites(this, values, current);
  },
  validate(v) {
    const period = v["cpu.cfs_period_us"];
    if (parsePeriod(period) === null)
      return `cpu.cfs_period_us must be an integer ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC}: found "${period}"`;
    const quota = v["cpu.cfs_quota_us"];
    if (quota === undefined || !INT.test(quota) || (Number(quota) < 0 && quota !== "-1"))
      return `cpu.cfs_quota_us must be -1 or an integer >= 0: found "${quota}"`;
    const shares = v["cpu.shares"];
    if (shares === undefined || !INT.test(shares) || Number(shares) < 0)
      return `cpu.shares must be an integer >= 0: found "${shares}"`;
    return validateOptional(v, "cpu.idle", "cpu.cfs_burst_us");
  },
  desired(d, current) {
    const period = parsePeriod(current["cpu.cfs_period_us"]) ?? DEFAULT_PERIOD_USEC;
    const quota = quotaUsecForCap(d.capCpuMillis, period);
    const idleClass = current["cpu.idle"] !== undefined;
    const out: Record<string, string> = {
      "cpu.cfs_quota_us": quota === null ? "-1" : String(quota),
      // batch where the kernel has no idle class: the smallest shares v1 allows
      "cpu.shares": String(d.idle && !idleClass ? MIN_SHARES : weightToShares(d.weight)),
    };
    if (idleClass) out["cpu.idle"] = d.idle ? "1" : "0";
    if (current["cpu.cfs_burst_us"] !== undefined)
      out["cpu.cfs_burst_us"] = String(burstUsecFor(d.burstCpuMillis, quota, period));
    return out;
  },
  describe(v) {
    const quota = Number(v["cpu.cfs_quota_us"]);
    return {
      quotaUsec: quota < 0 ? null : quota,
      periodUsec: Number(v["cpu.cfs_period_us"]),
      weight: sharesToWeight(Number(v["cpu.shares"])),
      ...describeOptional(v, "cpu.idle", "cpu.cfs_burst_us"),
    };
  },
};

const CPU_MAX = /^(max|\d+) (\d+)$/;

/** cgroup v2: cpu.max ("<quota> <period>" or "max <period>") and cpu.weight (1..10000). */
export const v2Format: CpuFileFormat = {
  layout: "cgroup-v2",
  heldFiles: ["cpu.max", "cpu.weight", "cpu.max.burst", "cpu.idle"],
  snapshotFiles: ["cpu.max", "cpu.weight", "cpu.max.burst", "cpu.idle"],
  optionalFiles: ["cpu.max.burst", "cpu.idle"],
  capFile: "cpu.max",
  weightFile: "cpu.weight",
  idleFile: "cpu.idle",
  burstFile: "cpu.max.burst",
  freshValues: {
    "cpu.max": "max 100000",
    "cpu.weight": "100",
    "cpu.max.burst": "0",
    "cpu.idle": "0",
  },
  plan(values, current) {
    return planWrites(this, values, current);
  },
  validate(v) {
    const max = v["cpu.max"];
    const m = max === undefined ? null : CPU_MAX.exec(max);
    if (!m || parsePeriod(m[2]) === null)
      return `cpu.max must be "<quota|max> <period ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC}>": found "${max}"`;
    const weight = v["cpu.weight"];
    if (
      weight === undefined ||
      !INT.test(weight) ||
      Number(weight) < MIN_WEIGHT ||
      Number(weight) > MAX_WEIGHT
    )
      return `cpu.weight must be an integer ${MIN_WEIGHT}..${MAX_WEIGHT}: found "${weight}"`;
    return validateOptional(v, "cpu.idle", "cpu.max.burst");
  },
  desired(d, current) {
    const m = CPU_MAX.exec(current["cpu.max"] ?? "");
    const period = parsePeriod(m?.[2]) ?? DEFAULT_PERIOD_USEC;
    const quota = quotaUsecForCap(d.capCpuMillis, period);
    const idleClass = current["cpu.idle"] !== undefined;
    const weight = d.idle && !idleClass ? MIN_WEIGHT : d.weight;
    const out: Record<string, string> = {
      "cpu.max": `${quota === null ? "max" : quota} ${period}`,
      "cpu.weight": String(clamp(Math.round(weight), MIN_WEIGHT, MAX_WEIGHT)),
    };
    if (idleClass) out["cpu.idle"] = d.idle ? "1" : "0";
    if (current["cpu.max.burst"] !== undefined)
      out["cpu.max.burst"] = String(burstUsecFor(d.burstCpuMillis, quota, period));
    return out;
  },
  describe(v) {
    const m = CPU_MAX.exec(v["cpu.max"] ?? "");
    return {
      quotaUsec: !m || m[1] === "max" ? null : Number(m[1]),
      periodUsec: Number(m?.[2]),
      weight: Number(v["cpu.weight"]),
      ...describeOptional(v, "cpu.idle", "cpu.max.burst"),
    };
  },
};

export const formats = { "cgroup-v1": v1Format, "cgroup-v2": v2Format } as const;

/** Throws COUNTER_MALFORMED naming the cgroup when found values do not parse. */
export function assertValid(
  format: CpuFileFormat,
  where: string,
  values: Record<string, string>,
): void {
  const problem = format.validate(values);
  if (problem)
    throw new WeirError(ErrorCodes.COUNTER_MALFORMED, `[${format.layout}] ${where}: ${problem}`);
}
