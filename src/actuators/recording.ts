// The recording hypervisor: an in-memory cgroup tree that records every write, for tests and
// experiments. It is the same engine as the cgroup backends (engine.ts), over an in-memory
// port, so it writes exactly what they would write and nothing when nothing changed.
import {
  type AllocationView,
  assertValid,
  type CpuFileFormat,
  v2Format,
} from "../cgroup/formats.ts";
import { MAX_PERIOD_USEC, MIN_PERIOD_USEC } from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  CGROUP_CAPABILITIES,
  cgroupTarget,
  dryRunPort,
  type FilePort,
  FileSetActuator,
  type LateWriteFailure,
} from "./engine.ts";
import type {
  ActuatorBackend,
  ActuatorTarget,
  BackendRegistration,
  CgroupTarget,
  TargetKind,
} from "./types.ts";

export const RECORDING = "recording";

/** A fault a recorded cgroup can be told to have: every write to it then fails with this errno. */
export type RecordingFault =
  /** EACCES: the files refuse writes (TARGET_NOT_WRITABLE). */
  | "not-writable"
  /** EROFS: read-only filesystem (TARGET_NOT_WRITABLE). */
  | "read-only"
  /** EBUSY: the kernel is busy (APPLY_FAILED, retryable). */
  | "busy"
  /** EINVAL: the kernel refuses the value (APPLY_FAILED, retryable). */
  | "invalid";

const FAULT_ERRNO: Record<RecordingFault, string> = {
  "not-writable": "EACCES",
  "read-only": "EROFS",
  busy: "EBUSY",
  invalid: "EINVAL",
};

/** One write attempt, in order. */
export interface WriteRecord {
  /** 1, 2, 3... across the backend. */
  seq: number;
  atMs: number;
  partition: string;
  cgroup: string;
  file: string;
  value: string;
  /** False when the write failed; `errno` says how. */
  ok: boolean;
  errno?: string;
}

export interface RecordingOptions {
  /** Backend name in messages and the registry (default "recording"). */
  name?: string;
  /** File layout to record, or one per target (dry-run: the layout each real cgroup has). Default v2. */
  format?: CpuFileFormat | ((target: CgroupTarget) => CpuFileFormat);
  /**
   * Starting content for a cgroup opened before it was created (dry-run: read from the real
   * files). Returning undefined means the cgroup does not exist: open() throws TARGET_GONE.
   */
  seed?: (target: CgroupTarget, format: CpuFileFormat) => Record<string, string> | undefined;
  /** Clock for WriteRecord.atMs (default Date.now). */
  now?: () => number;
  /** Target kinds it declares (default ["cgroup"]). */
  handles?: readonly TargetKind[];
  /** Keep about this many records; past it the oldest tenth is dropped (default 100_000). */
  maxRecords?: number;
  /**
   * Make it an asynchronous backend, like one in front of an API server: a write is submitted
   * (apply() returns at once) and takes effect, or fails, this many ms later on `now`'s clock,
   * in submission order. `applied()` shows only what took effect; a write that failed is
   * reported by the next apply(). Default 0: every write takes effect before apply() returns.
   */
  applyDelayMs?: number;
}

/** A write submitted to an asynchronous recording backend, not yet in effect. */
interface Submitted {
  target: CgroupTarget;
  node: Node;
  file: string;
  value: string;
  dueAtMs: number;
  /** Where its failure goes: the opening actuator's port. */
  failures: LateWriteFailure[];
}

interface Node {
  format: CpuFileFormat;
  values: Record<string, string>;
  fault: RecordingFault | null;
}

function errnoError(code: string, message: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${message}`);
  e.code = code;
  return e;
}

export class RecordingBackend implements ActuatorBackend {
  readonly name: string;
  readonly handles: readonly TargetKind[];
  /** What the cgroup backends express: it records their writes. */
  readonly capabilities = CGROUP_CAPABILITIES;
  private readonly tree = new Map<string, Node>();
  private readonly log: WriteRecord[] = [];
  private seq = 0;
  private readonly o: RecordingOptions;
  private readonly submitted: Submitted[] = [];

  constructor(opts: RecordingOptions = {}) {
    this.o = opts;
    this.name = opts.name ?? RECORDING;
    this.handles = opts.handles ?? ["cgroup"];
  }

  /**
   * Make a cgroup, holding what a fresh one holds, overridden by `values` (replaces an
   * existing one, which makes actuators opened on the old one see it as gone).
   */
  create(
    cgroup: string,
    values: Record<string, string> = {},
    format?: CpuFileFormat,
    exact = false,
  ): void {
    this.settle();
    const f = format ?? this.formatFor({ partition: cgroup, cgroup });
    // exact (a dry-run seed read from a real cgroup): optional files only if the seed has
    // them, so a kernel without the idle class or burst stays without them
    const base = exact
      ? Object.fromEntries(
          Object.entries(f.freshValues).filter(([k]) => !f.optionalFiles.includes(k)),
        )
      : f.freshValues;
    const v = { ...base, ...values };
    assertValid(f, `${this.name}:${cgroup}`, v);
    this.tree.set(cgroup, { format: f, values: v, fault: null });
  }

  /** Remove a cgroup (like rmdir): actuators on it get TARGET_GONE. Returns whether it existed. */
  remove(cgroup: string): boolean {
    this.settle();
    return this.tree.delete(cgroup);
  }

  /** Make every write to the cgroup fail with the fault's errno (null clears it). */
  setFault(cgroup: string, fault: RecordingFault | null): void {
    this.settle();
    const node = this.tree.get(cgroup);
    if (!node) throw new WeirError(ErrorCodes.TARGET_GONE, `[${this.name}] no cgroup ${cgroup}`);
    node.fault = fault;
  }

  /** What the cgroup's files hold now, or undefined if it does not exist. */
  files(cgroup: string): Readonly<Record<string, string>> | undefined {
    this.settle();
    const node = this.tree.get(cgroup);
    return node && { ...node.values };
  }

  /** The cgroup's allocation on common scales (cap, period, v2 weight). */
  view(cgroup: string): AllocationView | undefined {
    this.settle();
    const node = this.tree.get(cgroup);
    return node?.format.describe(node.values);
  }

  /** Every write attempt so far, oldest first (optionally only one cgroup's); an asynchronous one when it took effect or failed. */
  writes(cgroup?: string): readonly WriteRecord[] {
    this.settle();
    return cgroup === undefined ? [...this.log] : this.log.filter((r) => r.cgroup === cgroup);
  }

  /** Writes submitted and not yet in effect (asynchronous backends; 0 otherwise). */
  pendingWrites(): number {
    this.settle();
    return this.submitted.length;
  }

  /** Forget the records (not the tree). */
  clearWrites(): void {
    this.log.length = 0;
  }

  open(t: ActuatorTarget): FileSetActuator {
    const target = cgroupTarget(this.name, t);
    const node = this.node(target);
    const delayMs = this.o.applyDelayMs ?? 0;
    const failures: LateWriteFailure[] = [];
    const port: FilePort =
      delayMs > 0
        ? {
            write: (file, value) => {
              this.settle();
              const dueAtMs = this.clock() + delayMs;
              this.submitted.push({ target, node, file, value, dueAtMs, failures });
            },
            held: () => {
              this.settle();
              return { ...node.values };
            },
            takeFailures: () => {
              this.settle();
              return failures.splice(0);
            },
            close: () => {},
          }
        : {
            write: (file, value) => {
              const failure = this.write(target, node, file, value, this.clock());
              if (failure) throw failure;
            },
            close: () => {},
          };
    return new FileSetActuator({
      backend: this.name,
      partition: target.partition,
      location: `${this.name}:${target.cgroup}`,
      format: node.format,
      found: { ...node.values },
      port,
    });
  }

  /** What open() would write, decided from the cgroup as it is, neither written nor recorded. */
  openDryRun(t: ActuatorTarget): FileSetActuator {
    const target = cgroupTarget(this.name, t);
    const node = this.node(target);
    return new FileSetActuator({
      backend: `${this.name} (dry run)`,
      partition: target.partition,
      location: `${this.name}:${target.cgroup}`,
      format: node.format,
      found: { ...node.values },
      port: dryRunPort(),
    });
  }

  /** The target's cgroup, seeded if the options say how; throws TARGET_GONE without one. */
  private node(target: CgroupTarget): Node {
    let node = this.tree.get(target.cgroup);
    if (!node) {
      const format = this.formatFor(target);
      const seeded = this.o.seed?.(target, format);
      if (!seeded)
        throw new WeirError(
          ErrorCodes.TARGET_GONE,
          `[${this.name}] cgroup ${target.cgroup} does not exist`,
        );
      this.create(target.cgroup, seeded, format, true);
      node = this.tree.get(target.cgroup)!;
    }
    return node;
  }

  private clock(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Let the submitted writes that are due take effect (or fail), in submission order. */
  private settle(): void {
    const now = this.clock();
    while (this.submitted.length > 0 && this.submitted[0]!.dueAtMs <= now) {
      const w = this.submitted.shift()!;
      const error = this.write(w.target, w.node, w.file, w.value, w.dueAtMs);
      if (error) w.failures.push({ file: w.file, value: w.value, error });
    }
  }

  /** One write as the kernel takes it: recorded, applied, or the errno it fails with. */
  private write(
    target: CgroupTarget,
    opened: Node,
    file: string,
    value: string,
    atMs: number,
  ): NodeJS.ErrnoException | null {
    const rec: WriteRecord = {
      seq: ++this.seq,
      atMs,
      partition: target.partition,
      cgroup: target.cgroup,
      file,
      value,
      ok: true,
    };
    let failure: NodeJS.ErrnoException | null = null;
    // Like a held fd on a removed cgroup: a removed (or re-made) node answers ENODEV.
    if (this.tree.get(target.cgroup) !== opened)
      failure = errnoError("ENODEV", `${target.cgroup} was removed`);
    else if (opened.fault)
      failure = errnoError(FAULT_ERRNO[opened.fault], `${target.cgroup}/${file}`);
    else {
      const refusal = kernelRefusal(opened.format, opened.values, file, value);
      if (refusal) failure = errnoError("EINVAL", `${target.cgroup}/${file}: ${refusal}`);
    }
    if (failure) {
      rec.ok = false;
      rec.errno = failure.code;
    } else {
      applyLikeKernel(opened.format, opened.values, file, value);
    }
    this.log.push(rec);
    const max = this.o.maxRecords ?? 100_000;
    if (this.log.length > max) this.log.splice(0, this.log.length - max + Math.ceil(max / 10));
    return failure;
  }

  private formatFor(target: CgroupTarget): CpuFileFormat {
    const f = this.o.format;
    if (f === undefined) return v2Format;
    return typeof f === "function" ? f(target) : f;
  }
}

/**
 * The refusals the kernel makes that the actuators must avoid by ordering their writes
 * (verified on Linux 6.x, cgroup v1 and v2 alike): a weight written to a group in the idle
 * class, a burst above the quota, a quota below the burst, a period outside 1 ms .. 1 s — all
 * EINVAL.
 */
function kernelRefusal(
  f: CpuFileFormat,
  values: Readonly<Record<string, string>>,
  file: string,
  value: string,
): string | null {
  if (file === f.weightFile && values[f.idleFile] === "1") return "the group is in the idle class";
  if (file === f.periodFile && f.periodOf({ [file]: value }) === null)
    return `period ${value} outside ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC} us`;
  if (file === f.capFile && f.periodFile === null && f.periodOf({ [file]: value }) === null)
    return `"${value}": period outside ${MIN_PERIOD_USEC}..${MAX_PERIOD_USEC} us`;
  if (file === f.burstFile) {
    const quota = f.quotaOf(values[f.capFile]);
    if (quota !== null && Number(value) > quota) return `burst ${value} above quota ${quota}`;
  }
  if (file === f.capFile && values[f.burstFile] !== undefined) {
    const quota = f.quotaOf(value);
    if (quota !== null && Number(values[f.burstFile]) > quota)
      return `quota ${quota} below burst ${values[f.burstFile]}`;
  }
  return null;
}

/** Store a write as the kernel would: entering the idle class shows the idle weight, leaving it resets the default. */
function applyLikeKernel(
  f: CpuFileFormat,
  values: Record<string, string>,
  file: string,
  value: string,
): void {
  const was = values[file];
  values[file] = value;
  if (file === f.idleFile && was !== value)
    // idle groups run at WEIGHT_IDLEPRIO (3 shares; v2 shows weight 1); leaving resets to default
    values[f.weightFile] = value === "1" ? f.idleWeight : (f.freshValues[f.weightFile] ?? "");
}

export const recordingRegistration: BackendRegistration = {
  name: RECORDING,
  handles: ["cgroup"],
  capabilities: CGROUP_CAPABILITIES,
  description: "in-memory cgroup tree that records every write (tests, simulator)",
  create: (ctx) => new RecordingBackend({ now: ctx.now }),
};
