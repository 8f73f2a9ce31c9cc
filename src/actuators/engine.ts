// The one place that decides what to write: every backend (cgroup v1, v2, recording) is this
// engine over a different FilePort, so "write a value only when it changed" and the error
// classification are the same code for all of them. Pure: the port does the I/O.

import { type AllocationView, abilitiesOf, type CpuFileFormat } from "../cgroup/formats.ts";
import {
  DEFAULT_PERIOD_USEC,
  MAX_PERIOD_USEC,
  MIN_PERIOD_USEC,
  quotaFloorCpuMillis,
} from "../cgroup/values.ts";
import { sameDirective } from "../core/directive.ts";
import type { ErrorCode } from "../core/errors.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { ApplyResult, Directive, PartitionId } from "../core/model.ts";
import type {
  ActuatorAbilities,
  ActuatorCapabilities,
  ActuatorStats,
  ActuatorTarget,
  AllocationSnapshot,
  AppliedAllocation,
  CgroupTarget,
  PartitionActuator,
} from "./types.ts";

/**
 * A cgroup-kind target, as the backends over cgroup files need it; a target of another kind
 * given to one of them is a wiring mistake (CONFIG_INVALID naming both), never a guess.
 */
export function cgroupTarget(backend: string, target: ActuatorTarget): CgroupTarget {
  if ("cgroup" in target && typeof target.cgroup === "string") return target;
  throw new WeirError(
    ErrorCodes.CONFIG_INVALID,
    `[${backend}] handles cgroup targets: partition ${target.partition}'s target has no cgroup (${Object.keys(target).join(", ")})`,
  );
}

/**
 * What every backend over a cgroup file format expresses: a cap, a weight, batch (the idle
 * class where the kernel has it, else the least weight) and a burst where the kernel has it;
 * no CPU count, and no cpuset (the in-memory ones; the backends on the host's cgroupfs add it).
 */
export const CGROUP_CAPABILITIES: Readonly<ActuatorCapabilities> = Object.freeze({
  cap: true,
  weight: true,
  idle: true,
  burst: true,
  cpuCount: false,
  capPeriod: true,
  cpuset: false,
});

/** The cgroup v1 and v2 backends on this host's cgroupfs: CGROUP_CAPABILITIES and placement. */
export const CGROUP_FILE_CAPABILITIES: Readonly<ActuatorCapabilities> = Object.freeze({
  ...CGROUP_CAPABILITIES,
  cpuset: true,
});

/** A cgroup allocation on the directive's scales: quota and burst per period as millicores. */
export function appliedFromView(v: AllocationView): AppliedAllocation {
  const perMilli = (usec: number) => (usec * 1000) / v.periodUsec;
  const out: AppliedAllocation = {
    capCpuMillis: v.quotaUsec === null ? Number.POSITIVE_INFINITY : perMilli(v.quotaUsec),
    weight: v.weight,
  };
  if (v.idle !== undefined) out.idle = v.idle;
  if (v.burstUsec !== undefined) out.burstCpuMillis = perMilli(v.burstUsec);
  if (Number.isFinite(v.periodUsec)) out.capPeriodUs = v.periodUsec;
  return out;
}

/**
 * A directive the backends can write: cap a number or +Infinity (no cap), burst a finite
 * number >= 0, weight finite. Returns what is wrong, or null.
 */
export function checkDirective(d: Directive): string | null {
  if (Number.isNaN(d.capCpuMillis) || d.capCpuMillis === Number.NEGATIVE_INFINITY)
    return `capCpuMillis must be a number >= 0 or Infinity (no cap): current value is ${d.capCpuMillis}`;
  if (!Number.isFinite(d.weight))
    return `weight must be a finite number (1..10000): current value is ${d.weight}`;
  if (!(d.burstCpuMillis >= 0) || !Number.isFinite(d.burstCpuMillis))
    return `burstCpuMillis must be a finite number >= 0: current value is ${d.burstCpuMillis}`;
  const p = d.capPeriodUs;
  if (p !== undefined && !(Number.isInteger(p) && p >= MIN_PERIOD_USEC && p <= MAX_PERIOD_USEC))
    return `capPeriodUs must be an integer ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC} (microseconds) or absent: current value is ${p}`;
  return null;
}

/** A submitted write that the target refused after `write` returned (asynchronous ports). */
export interface LateWriteFailure {
  file: string;
  value: string;
  /** errno-style error, as `write` would have thrown it. */
  error: unknown;
}

/**
 * Where writes go. Throws an errno-style error (`code`: "ENODEV", "EACCES", "EINVAL"...) on
 * failure. A synchronous port (cgroupfs, the simulator) has done the write when `write`
 * returns. An asynchronous one (a port in front of an API server or QMP) queues it, returns at
 * once, and says what the target holds through `held` and what it refused through
 * `takeFailures`.
 */
export interface FilePort {
  /** Replace `file`'s content with `value` (trimmed text as the kernel prints it). */
  write(file: string, value: string): void;
  /** Asynchronous ports: what the target holds now as last observed (never blocks). */
  held?(): Readonly<Record<string, string>>;
  /** Asynchronous ports: submitted writes refused since the last call, oldest first. */
  takeFailures?(): LateWriteFailure[];
  close(): void;
}

export interface FileActuatorOptions {
  /** Backend name, prefixed to messages: "[cgroup-v1] ...". */
  backend: string;
  partition: PartitionId;
  /** Directory (or in-memory cgroup path) the files live in, for messages. */
  location: string;
  format: CpuFileFormat;
  /** Every snapshot file's content as found at open (trimmed). */
  found: Record<string, string>;
  port: FilePort;
}

const GONE = new Set(["ENOENT", "ENODEV", "ESTALE", "ENOTDIR"]);
const NOT_WRITABLE = new Set(["EACCES", "EPERM", "EROFS"]);

/**
 * What a failed write means: the cgroup vanished (terminal), it refuses writes (terminal until
 * someone fixes permissions), or the kernel refused this value now (retried next cycle).
 * The message names the backend, the file and the value.
 */
export function classifyWriteError(
  backend: string,
  path: string,
  value: string,
  err: unknown,
): WeirError {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why = code ?? (err instanceof Error ? err.message : String(err));
  let c: ErrorCode = ErrorCodes.APPLY_FAILED;
  let tail = "the kernel refused the value; retried next cycle";
  if (code && GONE.has(code)) {
    c = ErrorCodes.TARGET_GONE;
    tail = "the cgroup is gone";
  } else if (code && NOT_WRITABLE.has(code)) {
    c = ErrorCodes.TARGET_NOT_WRITABLE;
    tail = "the cgroup file is not writable";
  }
  return new WeirError(c, `[${backend}] writing "${value}" to ${path} failed: ${why} (${tail})`, {
    retryable: c === ErrorCodes.APPLY_FAILED,
    cause: err,
  });
}

/**
 * A port that writes nothing: `--dry-run`. The engine over it decides exactly what the real
 * backend would write (same format, same values found at open) and reports it in `written`.
 */
export const dryRunPort = (): FilePort => ({ write: () => {}, close: () => {} });

/**
 * The `written` of an apply that wrote nothing on the no-change path: one frozen empty list,
 * not a new one per partition per cycle (the cycle record keeps it).
 */
const NOTHING_WRITTEN = Object.freeze([]) as unknown as string[];

/** One partition's allocation files: a cache of what they hold, and writes of what changed. */
export class FileSetActuator implements PartitionActuator {
  readonly partition: PartitionId;
  private readonly o: FileActuatorOptions;
  private readonly found: Readonly<Record<string, string>>;
  /** The period a directive without `capPeriodUs` gets: the one found at open. */
  private readonly foundPeriodUsec: number;
  /**
   * What each file holds as far as we know, write-on-change compares with it: found at open,
   * then every write the port took (done, for a synchronous port; submitted, for an
   * asynchronous one, until it reports the write refused).
   */
  private readonly cache: Record<string, string>;
  /** The last directive as the files would hold it once in force (null before the first apply). */
  private lastDesired: Record<string, string> | null = null;
  /** Bumped whenever `cache` changes (a write taken, a refused write undone). */
  private cacheVersion = 0;
  /**
   * The last directive that wrote nothing, the cache version it was planned against and how
   * many files it found unchanged: the same directive over the same cache plans the same values
   * and writes nothing again, so apply() counts those skips and returns without building the
   * values' strings (the no-change path of every idle partition, every cycle).
   */
  private unchanged: { directive: Directive; version: number; skips: number } | null = null;
  /** desired()'s answer for `lastDesired` (the same object while that does not change). */
  private desiredMemo: { of: Record<string, string>; value: AppliedAllocation } | null = null;
  /** applied()'s answer for a cache version (synchronous ports: the cache is what is in force). */
  private appliedMemo: { version: number; value: AppliedAllocation } | null = null;
  private goneError: WeirError | null = null;
  private closed = false;
  private readonly counters: ActuatorStats = { writes: 0, failedWrites: 0, unchangedSkips: 0 };

  constructor(o: FileActuatorOptions) {
    this.o = o;
    this.partition = o.partition;
    this.found = Object.freeze({ ...o.found });
    this.foundPeriodUsec = o.format.periodOf(o.found) ?? DEFAULT_PERIOD_USEC;
    this.cache = { ...o.found };
  }

  snapshot(): AllocationSnapshot {
    return { partition: this.partition, values: { ...this.found } };
  }

  apply(directive: Directive): ApplyResult {
    const refused = this.refusal();
    if (refused) return refused;
    const problem = checkDirective(directive);
    if (problem) return this.invalid(`refusing directive for ${this.partition}: ${problem}`);
    const late = this.lateFailure();
    if (late?.code === ErrorCodes.TARGET_GONE)
      return { partition: this.partition, written: [], error: late.toInfo() };
    const u = this.unchanged;
    if (
      late === null &&
      u !== null &&
      u.version === this.cacheVersion &&
      sameDirective(u.directive, directive)
    ) {
      this.counters.unchangedSkips += u.skips;
      return { partition: this.partition, written: NOTHING_WRITTEN };
    }
    const values = this.o.format.desired(directive, this.cache, this.foundPeriodUsec);
    this.lastDesired = this.asHeld(values);
    const skipsBefore = this.counters.unchangedSkips;
    const result = this.writeChanged(values);
    this.unchanged =
      late === null && !result.error && result.written.length === 0
        ? {
            directive: { ...directive },
            version: this.cacheVersion,
            skips: this.counters.unchangedSkips - skipsBefore,
          }
        : null;
    if (late && !result.error) result.error = late.toInfo();
    return result;
  }

  /**
   * The last directive as the target expresses it (see PartitionActuator.desired): the files
   * as they will hold it, on the directive's scales.
   */
  desired(): AppliedAllocation | null {
    const last = this.lastDesired;
    if (last === null) return null;
    if (this.desiredMemo?.of !== last)
      this.desiredMemo = {
        of: last,
        value: Object.freeze(appliedFromView(this.o.format.describe(last))),
      };
    return this.desiredMemo.value;
  }

  restore(snapshot: AllocationSnapshot): ApplyResult {
    const refused = this.refusal();
    if (refused) return refused;
    if (snapshot.partition !== this.partition)
      return this.invalid(
        `refusing to restore partition ${snapshot.partition}'s snapshot onto ${this.partition}`,
      );
    const unknown = Object.keys(snapshot.values).filter(
      (f) => !this.o.format.snapshotFiles.includes(f),
    );
    if (unknown.length > 0)
      return this.invalid(
        `snapshot for ${this.partition} names files ${this.o.format.layout} does not manage: ${unknown.join(", ")}`,
      );
    this.lastDesired = this.asHeld(snapshot.values);
    this.unchanged = null;
    return this.writeChanged(snapshot.values);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.port.close();
  }

  stats(): ActuatorStats {
    return { ...this.counters };
  }

  /** What the files hold as far as this actuator knows (found at open plus its own writes). */
  current(): Record<string, string> {
    return { ...this.cache };
  }

  /**
   * What is in force, observed through this actuator's own confirmed writes (a file write is
   * synchronous: once it succeeded the kernel holds it). A weight the idle class reset is what
   * the kernel shows: the idle weight while idle, the default after.
   */
  applied(): AppliedAllocation {
    const f = this.o.format;
    const held = this.o.port.held?.();
    if (!held && this.appliedMemo?.version === this.cacheVersion) return this.appliedMemo.value;
    const v = held ? { ...this.found, ...held } : { ...this.cache };
    v[f.weightFile] ??= v[f.idleFile] === "1" ? f.idleWeight : (f.freshValues[f.weightFile] ?? "");
    const value = Object.freeze(appliedFromView(f.describe(v)));
    if (!held) this.appliedMemo = { version: this.cacheVersion, value };
    return value;
  }

  /**
   * What the files will hold once `values` (a directive's) are written over the cache: a group
   * in the idle class keeps the weight it showed (no weight is written to it), and one that
   * enters the class shows the kernel's idle weight.
   */
  private asHeld(values: Record<string, string>): Record<string, string> {
    const f = this.o.format;
    const v = { ...this.cache, ...values };
    if (v[f.idleFile] === "1")
      v[f.weightFile] =
        (this.cache[f.idleFile] === "1" && this.cache[f.weightFile]) || f.idleWeight;
    return v;
  }

  /**
   * Writes an asynchronous port reports refused since the last apply: each file goes back to
   * what the target holds (so the value is submitted again), counted as a failed write; the
   * first one's error is returned (a vanished target's: the actuator is gone from then on).
   */
  private lateFailure(): WeirError | null {
    const failures = this.o.port.takeFailures?.() ?? [];
    if (failures.length === 0) return null;
    const held = this.o.port.held?.() ?? {};
    let first: WeirError | null = null;
    for (const f of failures) {
      this.counters.failedWrites++;
      const e = classifyWriteError(
        this.o.backend,
        `${this.o.location}/${f.file}`,
        f.value,
        f.error,
      );
      if (e.code === ErrorCodes.TARGET_GONE) this.goneError = e;
      if (this.cache[f.file] === f.value) {
        const was = held[f.file];
        if (was === undefined) delete this.cache[f.file];
        else this.cache[f.file] = was;
        this.cacheVersion++;
      }
      if (!first || e.code === ErrorCodes.TARGET_GONE) first = e;
    }
    return first;
  }

  /**
   * The kernel's quota floor at the period the cgroup was found with (a directive's longer
   * `capPeriodUs` only lowers it: 1,000 us of 500 ms is 2m).
   */
  quotaFloorCpuMillis(): number {
    return quotaFloorCpuMillis(this.foundPeriodUsec);
  }

  /**
   * What the cgroup offers beyond a cap and a weight: the kernel's idle class and CFS burst
   * (found at open: older kernels lack the files, and batch then runs at the minimum weight).
   */
  abilities(): ActuatorAbilities {
    return abilitiesOf(this.o.format, this.found);
  }

  private writeChanged(values: Record<string, string>): ApplyResult {
    const written: string[] = [];
    let error: WeirError | null = null;
    const f = this.o.format;
    for (const file of f.plan(values, this.cache)) {
      const value = values[file];
      if (value === undefined) continue;
      if (this.cache[file] === value) {
        this.counters.unchangedSkips++;
        continue;
      }
      try {
        this.o.port.write(file, value);
      } catch (err) {
        this.counters.failedWrites++;
        const e = classifyWriteError(this.o.backend, `${this.o.location}/${file}`, value, err);
        if (e.code === ErrorCodes.TARGET_GONE) {
          this.goneError = e;
          error = e;
          break;
        }
        error ??= e;
        continue;
      }
      this.counters.writes++;
      this.cache[file] = value;
      this.cacheVersion++;
      // Entering or leaving the idle class changes the weight behind our back (the kernel shows
      // 3 shares while idle and resets to the default after): forget what we knew of it.
      if (file === f.idleFile) delete this.cache[f.weightFile];
      written.push(file);
    }
    const result: ApplyResult = { partition: this.partition, written };
    if (error) result.error = error.toInfo();
    return result;
  }

  /** Once gone, always gone (the manager reopens); after close(), nothing is written. */
  private refusal(): ApplyResult | null {
    if (this.goneError)
      return { partition: this.partition, written: [], error: this.goneError.toInfo() };
    if (this.closed) return this.invalid(`actuator for ${this.partition} is closed`);
    return null;
  }

  private invalid(message: string): ApplyResult {
    const e = new WeirError(ErrorCodes.DIRECTIVE_INVALID, `[${this.o.backend}] ${message}`, {
      retryable: false,
    });
    return { partition: this.partition, written: [], error: e.toInfo() };
  }
}
