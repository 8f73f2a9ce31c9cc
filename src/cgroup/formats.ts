// What a directive looks like in cgroup files, for cgroup v1 and v2. Pure: no I/O.
//
// A format names the files a backend holds, parses what it found (the period), and turns a
// directive into the exact text each file should hold. The actuator engine
// (src/actuators/engine.ts) compares that text with what the file held last and writes only
// the ones that differ; the simulator's hypervisor and the recording backend hold the same
// files.
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Directive } from "../core/model.ts";
import { clamp } from "../core/units.ts";
import {
  burstUsecFor,
  DEFAULT_PERIOD_USEC,
  DEFAULT_SHARES,
  DEFAULT_WEIGHT,
  IDLE_GROUP_SHARES,
  INT,
  MAX_PERIOD_USEC,
  MAX_WEIGHT,
  MIN_PERIOD_USEC,
  MIN_SHARES,
  MIN_WEIGHT,
  parseCfsQuota,
  parseCpuMax,
  parsePeriodUsec,
  quotaUsecForCap,
  sharesToWeight,
  weightToShares,
} from "./values.ts";

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
   * `abilitiesOf` says which a cgroup has.
   */
  readonly optionalFiles: readonly string[];
  /** The files that carry the cap, the weight, the idle class and the burst. */
  readonly capFile: string;
  /**
   * The file that carries the period apart from the quota (v1 `cpu.cfs_period_us`); null where
   * one file holds both (v2 `cpu.max`).
   */
  readonly periodFile: string | null;
  readonly weightFile: string;
  readonly idleFile: string;
  readonly burstFile: string;
  /** What the weight file reads while the group is in the idle class (v1 "3", v2 "1"). */
  readonly idleWeight: string;
  /**
   * The order to write `values` in, given what the files hold now, leaving out what must not be
   * written: the weight of a group in the idle class (the kernel refuses it: EINVAL) and files
   * the cgroup does not have. Idle before weight (leaving the idle class resets the weight);
   * burst before the cap when the burst shrinks, after it otherwise (burst <= quota always);
   * v1's period before the quota when it grows, after it when it shrinks (periodFile).
   */
  plan(
    values: Readonly<Record<string, string>>,
    current: Readonly<Record<string, string>>,
  ): string[];
  /** What a freshly made cgroup holds (trimmed, as the kernel prints it). */
  readonly freshValues: Readonly<Record<string, string>>;
  /** Check found values; returns a message naming the file and the bad value, or null. */
  validate(values: Readonly<Record<string, string>>): string | null;
  /**
   * The text each held file should hold for `directive`, given what the files hold now: the cap
   * at the directive's `capPeriodUs`, else at `defaultPeriodUsec` (the period found at open).
   */
  desired(
    directive: Directive,
    current: Readonly<Record<string, string>>,
    defaultPeriodUsec: number,
  ): Record<string, string>;
  /** The period (us) `values` hold; null when they hold none that parses. */
  periodOf(values: Readonly<Record<string, string>>): number | null;
  /** The quota (us) the cap file's text holds; null = unlimited (or not a quota). */
  quotaOf(capText: string | undefined): number | null;
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

/** What a cgroup can express beyond a cap and a weight. */
export interface CgroupAbilities {
  /** The kernel's idle scheduling class (`cpu.idle`, Linux >= 5.15). */
  idleClass: boolean;
  /** CFS burst (`cpu.cfs_burst_us` / `cpu.max.burst`, Linux >= 5.14). */
  burst: boolean;
}

/**
 * Idle-class and burst support, from the files a cgroup was found with: the kernel has the
 * mechanism exactly when the cgroup has its file (they are the format's optional files).
 */
export const abilitiesOf = (
  f: Pick<CpuFileFormat, "idleFile" | "burstFile">,
  found: Readonly<Record<string, string>>,
): CgroupAbilities => ({
  idleClass: found[f.idleFile] !== undefined,
  burst: found[f.burstFile] !== undefined,
});

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
  f: Pick<CpuFileFormat, "capFile" | "weightFile" | "idleFile" | "burstFile" | "periodFile">,
  values: Readonly<Record<string, string>>,
  current: Readonly<Record<string, string>>,
): string[] {
  const has = (file: string) => values[file] !== undefined;
  const optionalMissing = (file: string) => current[file] === undefined;
  const pf = f.periodFile;
  const known = [f.capFile, f.weightFile, f.idleFile, f.burstFile, pf];
  // anything else first
  const out: string[] = Object.keys(values).filter((file) => !known.includes(file));
  // The kernel checks each write's quota ÷ period against the parent's and the children's
  // (tg_cfs_schedulable_down, EINVAL), so the pair in between must not claim more than either
  // end: a longer period goes first (the old quota over it is less), a shorter one last (the
  // new quota over the old period is less).
  const period = pf !== null && has(pf);
  const periodFirst = period && !(Number(values[pf]) < Number(current[pf]));
  if (periodFirst) out.push(pf);
  const burst = has(f.burstFile) && !optionalMissing(f.burstFile);
  const burstFirst = burst && Number(values[f.burstFile]) < Number(current[f.burstFile]);
  if (burstFirst) out.push(f.burstFile);
  if (has(f.capFile)) out.push(f.capFile);
  if (burst && !burstFirst) out.push(f.burstFile);
  if (period && !periodFirst) out.push(pf);
  const idleKnown = has(f.idleFile) && !optionalMissing(f.idleFile);
  if (idleKnown) out.push(f.idleFile);
  // the idle state after these writes: a weight written to an idle group is refused
  const idleAfter = idleKnown ? values[f.idleFile] === "1" : current[f.idleFile] === "1";
  if (has(f.weightFile) && !idleAfter) out.push(f.weightFile);
  return out;
}

/** The idle and burst files' desired text, where the cgroup has them. */
function desiredOptional(
  f: Pick<CpuFileFormat, "idleFile" | "burstFile">,
  d: Directive,
  current: Readonly<Record<string, string>>,
  quotaUsec: number | null,
  periodUsec: number,
): Record<string, string> {
  const can = abilitiesOf(f, current);
  const out: Record<string, string> = {};
  if (can.idleClass) out[f.idleFile] = d.idle ? "1" : "0";
  if (can.burst) out[f.burstFile] = String(burstUsecFor(d.burstCpuMillis, quotaUsec, periodUsec));
  return out;
}

/** cgroup v1: cpu.cfs_period_us, cpu.cfs_quota_us (-1 = unlimited), cpu.shares. */
export const v1Format: CpuFileFormat = {
  layout: "cgroup-v1",
  heldFiles: [
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.shares",
    "cpu.cfs_burst_us",
    "cpu.idle",
  ],
  snapshotFiles: [
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.shares",
    "cpu.cfs_burst_us",
    "cpu.idle",
  ],
  optionalFiles: ["cpu.cfs_burst_us", "cpu.idle"],
  capFile: "cpu.cfs_quota_us",
  periodFile: "cpu.cfs_period_us",
  weightFile: "cpu.shares",
  idleFile: "cpu.idle",
  burstFile: "cpu.cfs_burst_us",
  idleWeight: String(IDLE_GROUP_SHARES),
  freshValues: {
    "cpu.cfs_period_us": String(DEFAULT_PERIOD_USEC),
    "cpu.cfs_quota_us": "-1",
    "cpu.shares": String(DEFAULT_SHARES),
    "cpu.cfs_burst_us": "0",
    "cpu.idle": "0",
  },
  plan(values, current) {
    return planWrites(this, values, current);
  },
  validate(v) {
    const period = v["cpu.cfs_period_us"];
    if (parsePeriodUsec(period) === null)
      return `cpu.cfs_period_us must be an integer ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC}: found "${period}"`;
    const quota = v["cpu.cfs_quota_us"];
    if (quota === undefined || !INT.test(quota) || (Number(quota) < 0 && quota !== "-1"))
      return `cpu.cfs_quota_us must be -1 or an integer >= 0: found "${quota}"`;
    const shares = v["cpu.shares"];
    if (shares === undefined || !INT.test(shares) || Number(shares) < 0)
      return `cpu.shares must be an integer >= 0: found "${shares}"`;
    return validateOptional(v, "cpu.idle", "cpu.cfs_burst_us");
  },
  desired(d, current, defaultPeriodUsec) {
    const period = d.capPeriodUs ?? defaultPeriodUsec;
    const quota = quotaUsecForCap(d.capCpuMillis, period);
    const { idleClass } = abilitiesOf(this, current);
    return {
      "cpu.cfs_period_us": String(period),
      "cpu.cfs_quota_us": quota === null ? "-1" : String(quota),
      // batch where the kernel has no idle class: the smallest shares v1 allows
      "cpu.shares": String(d.idle && !idleClass ? MIN_SHARES : weightToShares(d.weight)),
      ...desiredOptional(this, d, current, quota, period),
    };
  },
  quotaOf: parseCfsQuota,
  periodOf: (v) => parsePeriodUsec(v["cpu.cfs_period_us"]),
  describe(v) {
    return {
      quotaUsec: parseCfsQuota(v["cpu.cfs_quota_us"]),
      periodUsec: Number(v["cpu.cfs_period_us"]),
      weight: sharesToWeight(Number(v["cpu.shares"])),
      ...describeOptional(v, "cpu.idle", "cpu.cfs_burst_us"),
    };
  },
};

/** cgroup v2: cpu.max ("<quota> <period>" or "max <period>") and cpu.weight (1..10000). */
export const v2Format: CpuFileFormat = {
  layout: "cgroup-v2",
  heldFiles: ["cpu.max", "cpu.weight", "cpu.max.burst", "cpu.idle"],
  snapshotFiles: ["cpu.max", "cpu.weight", "cpu.max.burst", "cpu.idle"],
  optionalFiles: ["cpu.max.burst", "cpu.idle"],
  capFile: "cpu.max",
  periodFile: null,
  weightFile: "cpu.weight",
  idleFile: "cpu.idle",
  burstFile: "cpu.max.burst",
  idleWeight: String(sharesToWeight(IDLE_GROUP_SHARES)),
  freshValues: {
    "cpu.max": `max ${DEFAULT_PERIOD_USEC}`,
    "cpu.weight": String(DEFAULT_WEIGHT),
    "cpu.max.burst": "0",
    "cpu.idle": "0",
  },
  plan(values, current) {
    return planWrites(this, values, current);
  },
  validate(v) {
    const max = v["cpu.max"];
    if (parseCpuMax(max) === null)
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
  desired(d, current, defaultPeriodUsec) {
    const period = d.capPeriodUs ?? defaultPeriodUsec;
    const quota = quotaUsecForCap(d.capCpuMillis, period);
    const { idleClass } = abilitiesOf(this, current);
    const weight = d.idle && !idleClass ? MIN_WEIGHT : d.weight;
    return {
      "cpu.max": `${quota === null ? "max" : quota} ${period}`,
      "cpu.weight": String(clamp(Math.round(weight), MIN_WEIGHT, MAX_WEIGHT)),
      ...desiredOptional(this, d, current, quota, period),
    };
  },
  quotaOf: (text) => parseCpuMax(text)?.quotaUsec ?? null,
  periodOf: (v) => parseCpuMax(v["cpu.max"])?.periodUsec ?? null,
  describe(v) {
    const max = parseCpuMax(v["cpu.max"]);
    return {
      quotaUsec: max?.quotaUsec ?? null,
      periodUsec: max?.periodUsec ?? Number.NaN,
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
