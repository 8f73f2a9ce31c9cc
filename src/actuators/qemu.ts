// The "qemu" backend: a QEMU guest as a partition. Its cap and weight go on the cgroup QEMU
// runs in (every vCPU thread, hot-added ones too, inherits it) through the host's cgroup
// backend; its CPU count goes to the guest as vCPUs hot-plugged or unplugged over QMP, one at a
// time, within [minCpus, maxCpus] (src/vm/guest-cpus.ts). What is Applied is what the guest
// kernel onlined, read from its own console lines (the guest's agent onlines a hot-added vCPU;
// the guest kernel offlines an unplugged one itself).
//
// `apply` never waits on QMP: a changed count is submitted to GuestCpus' background loop and
// observed later. QMP is connected in the background at open. A QMP error is reported once
// (WEIR_APPLY_FAILED, retryable) and retried at most every `retryMs`; QEMU gone (its QMP
// socket closed, or never answering) is WEIR_TARGET_GONE, terminal and sticky, the way a
// vanished cgroup is: the manager marks only this partition gone and reopens it later.
import { existsSync } from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { ApplyResult, Directive, PartitionId } from "../core/model.ts";
import { LogTail } from "../vm/guest.ts";
import { applyConsole, GuestCpus, type GuestCpusStatus } from "../vm/guest-cpus.ts";
import { QmpClient } from "../vm/qmp.ts";
import { CgroupBackend } from "./cgroup.ts";
import { CGROUP_CAPABILITIES, type FileSetActuator } from "./engine.ts";
import type {
  ActuatorAbilities,
  ActuatorBackend,
  ActuatorCapabilities,
  ActuatorStats,
  ActuatorTarget,
  AllocationSnapshot,
  AppliedAllocation,
  BackendRegistration,
  PartitionActuator,
} from "./types.ts";

/** Where a QEMU guest partition is: its cgroup, its QMP socket, its serial console. */
export interface QemuLocation {
  /** The cgroup QEMU runs in, relative to the cgroup root (as `partitions[].cgroup`). */
  cgroup: string;
  /** QEMU's QMP unix socket (`-qmp unix:<path>,server=on,wait=off`). */
  qmpSocket: string;
  /** The file QEMU writes the guest's serial console to (`-serial file:<path>`), from boot. */
  consoleLog: string;
  /** Fewest vCPUs (default 1: the boot vCPU). */
  minCpus?: number;
  /** Most vCPUs (default: every slot QEMU offers, `-smp …,maxcpus=N`). */
  maxCpus?: number;
  /** Shrink only after directives asked for fewer vCPUs this long (default 10 s; 0: at once). */
  shrinkAfterMs?: number;
  /** Unplug to shrink (default false: the guest offlines; src/vm/guest-cpus.ts says why). */
  unplug?: boolean;
}

export const DEFAULT_SHRINK_AFTER_MS = 10_000;

declare module "./types.ts" {
  interface TargetLocations {
    qemu: QemuLocation;
  }
}

export type QemuTarget = Extract<ActuatorTarget, { qemu: QemuLocation }>;

/** The snapshot key of the guest's vCPU count (beside the cgroup's files). */
export const VCPUS_KEY = "vcpus";

/**
 * The cgroup's, plus a CPU count; no cap period: a guest's vCPU threads would run in long
 * slices under it, which this backend has not been measured with, so its cap keeps the cgroup's
 * own period (a directive's `capPeriodUs` is left out).
 */
export const QEMU_CAPABILITIES: ActuatorCapabilities = {
  ...CGROUP_CAPABILITIES,
  cpuCount: true,
  capPeriod: false,
  cpuset: false,
};

export const QEMU_CONNECT_TIMEOUT_MS = 10_000;

function qemuTarget(target: ActuatorTarget): QemuTarget {
  if (!("qemu" in target))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `[qemu] partition ${target.partition}: the qemu backend needs a qemu target (partitions[].qemu: qmp socket and console), got ${Object.keys(target).join(", ")}`,
    );
  return target;
}

const gone = (partition: PartitionId, why: string) =>
  new WeirError(ErrorCodes.TARGET_GONE, `[qemu] partition ${partition}: ${why}`);

/** A directive's CPU count within [min, max] (at least one vCPU). */
export function vcpusFor(cpuCount: number, minCpus: number, maxCpus: number): number {
  const n = Number.isFinite(cpuCount) ? Math.floor(cpuCount) : minCpus;
  return Math.min(Math.max(1, maxCpus), Math.max(minCpus, n, 1));
}

/** What the vCPU side looks like now (the demo and benchmarks read it). */
export interface QemuVcpuStatus extends Omit<GuestCpusStatus, "plugged"> {
  plugged: number | null;
  /** When the desired count last changed (epoch ms), null before. */
  requestedAtMs: number | null;
  /** Connected to QMP yet. */
  connected: boolean;
}

export class QemuActuator implements PartitionActuator {
  readonly partition: PartitionId;
  private readonly cgroup: FileSetActuator;
  private readonly loc: QemuLocation;
  private readonly dryRun: boolean;
  private readonly now: () => number;
  private readonly retryMs: number;
  private readonly foundVcpus: number;
  private cpus: GuestCpus | null = null;
  private qmp: QmpClient | null = null;
  private goneError: WeirError | null = null;
  private closed = false;
  /** The count last submitted (or, in a dry run, decided). */
  private wantVcpus: number;
  private requestedAtMs: number | null = null;
  private maxCpus: number;
  private readonly minCpus: number;
  private reportedError: string | null = null;
  private readonly shrinkAfterMs: number;
  /** Since when every directive asked for fewer vCPUs than desired, and the most of them. */
  private fewerSince: number | null = null;
  private fewerMost = 0;
  private lastRetryAtMs = 0;
  private readonly counters: ActuatorStats = { writes: 0, failedWrites: 0, unchangedSkips: 0 };
  /** Console reader used until QMP is up (then GuestCpus reads it), and in a dry run. */
  private readonly console: LogTail;
  private consoleOnline = new Set([0]);
  private consolePartial = "";

  constructor(o: {
    target: QemuTarget;
    cgroup: FileSetActuator;
    dryRun: boolean;
    now?: () => number;
    retryMs?: number;
    connectTimeoutMs?: number;
  }) {
    this.partition = o.target.partition;
    this.loc = o.target.qemu;
    this.cgroup = o.cgroup;
    this.dryRun = o.dryRun;
    this.now = o.now ?? Date.now;
    this.retryMs = o.retryMs ?? 1000;
    this.shrinkAfterMs = this.loc.shrinkAfterMs ?? DEFAULT_SHRINK_AFTER_MS;
    this.minCpus = Math.max(1, Math.floor(this.loc.minCpus ?? 1));
    this.maxCpus = Math.max(this.minCpus, Math.floor(this.loc.maxCpus ?? Number.MAX_SAFE_INTEGER));
    this.console = new LogTail(this.loc.consoleLog, { keepText: false });
    this.foundVcpus = this.consoleVcpus();
    this.wantVcpus = this.foundVcpus;
    if (!this.dryRun) void this.connect(o.connectTimeoutMs ?? QEMU_CONNECT_TIMEOUT_MS);
  }

  private async connect(timeoutMs: number): Promise<void> {
    let qmp: QmpClient | null = null;
    try {
      qmp = await QmpClient.connect(this.loc.qmpSocket, { timeoutMs });
      const slots = await qmp.queryHotpluggableCpus();
      if (this.closed) {
        qmp.close();
        return;
      }
      this.maxCpus = Math.min(this.maxCpus, slots.length);
      this.qmp = qmp;
      // GuestCpus reads the console from boot itself; this reader is no longer needed.
      this.cpus = new GuestCpus({
        qmp,
        tail: new LogTail(this.loc.consoleLog, { keepText: false }),
        minCpus: this.minCpus,
        maxCpus: this.maxCpus,
        now: this.now,
        unplug: this.loc.unplug ?? false,
      });
      if (this.wantVcpus !== this.foundVcpus) this.cpus.request(this.wantVcpus);
    } catch (err) {
      qmp?.close();
      if (!this.closed)
        this.goneError = gone(
          this.partition,
          `QMP ${this.loc.qmpSocket} unusable (QEMU not running?): ${(err as Error).message}`,
        );
    }
  }

  snapshot(): AllocationSnapshot {
    const s = this.cgroup.snapshot();
    return {
      partition: this.partition,
      values: { ...s.values, [VCPUS_KEY]: String(this.foundVcpus) },
    };
  }

  apply(directive: Directive): ApplyResult {
    const { capPeriodUs: _notSupported, ...atOwnPeriod } = directive;
    const r = this.cgroup.apply(atOwnPeriod);
    if (r.error && !r.error.retryable) return r;
    return this.submitVcpus(directive.cpuCount, r);
  }

  restore(snapshot: AllocationSnapshot): ApplyResult {
    const { [VCPUS_KEY]: vcpus, ...values } = snapshot.values;
    const r = this.cgroup.restore({ partition: snapshot.partition, values });
    if ((r.error && !r.error.retryable) || vcpus === undefined) return r;
    return this.submitVcpus(Number(vcpus), r, true);
  }

  /** Submit a vCPU count (only when it changed), and report QEMU gone or a new QMP error. */
  private submitVcpus(cpuCount: number, r: ApplyResult, restoring = false): ApplyResult {
    const goneNow = this.goneNow();
    if (goneNow) {
      this.counters.failedWrites++;
      return { ...r, error: goneNow.toInfo() };
    }
    const written = [...r.written];
    const want = this.damped(vcpusFor(cpuCount, this.minCpus, this.maxCpus), restoring);
    if (want !== this.wantVcpus) {
      this.wantVcpus = want;
      this.requestedAtMs = this.now();
      this.counters.writes++;
      written.push(VCPUS_KEY);
      this.cpus?.request(want);
    } else {
      this.counters.unchangedSkips++;
      const err = this.cpus?.status().lastError ?? null;
      if (err !== null && this.now() - this.lastRetryAtMs >= this.retryMs) {
        this.lastRetryAtMs = this.now();
        this.cpus?.request(want);
      }
    }
    const out: ApplyResult = { partition: this.partition, written };
    if (r.error) out.error = r.error;
    const err = this.cpus?.status().lastError ?? null;
    if (err !== null && err !== this.reportedError && !out.error) {
      this.counters.failedWrites++;
      out.error = {
        code: ErrorCodes.APPLY_FAILED,
        message: `[qemu] partition ${this.partition}: setting ${this.wantVcpus} vCPUs over QMP ${this.loc.qmpSocket} failed: ${err}`,
        retryable: true,
      };
    }
    this.reportedError = err;
    return out;
  }

  /**
   * A larger count at once; a smaller one only once every directive for `shrinkAfterMs` asked
   * for fewer (then the most of them): each hot-plug costs the guest, and QEMU 7.2 under TCG
   * was seen to abort ("double free or corruption") re-plugging a vCPU it had just unplugged.
   * A restore shrinks at once.
   */
  private damped(want: number, now: boolean): number {
    if (want >= this.wantVcpus || now || this.shrinkAfterMs <= 0) {
      this.fewerSince = null;
      return want;
    }
    const t = this.now();
    if (this.fewerSince === null) {
      this.fewerSince = t;
      this.fewerMost = want;
    } else this.fewerMost = Math.max(this.fewerMost, want);
    if (t - this.fewerSince < this.shrinkAfterMs) return this.wantVcpus;
    this.fewerSince = null;
    return this.fewerMost;
  }

  /** QEMU gone: QMP never came up, or closed under us (sticky). */
  private goneNow(): WeirError | null {
    if (this.closed)
      return new WeirError(
        ErrorCodes.DIRECTIVE_INVALID,
        `[qemu] partition ${this.partition}: actuator closed`,
      );
    if (!this.goneError && this.qmp?.closed)
      this.goneError = gone(this.partition, `QMP ${this.loc.qmpSocket} closed (QEMU exited)`);
    return this.goneError;
  }

  /** The last directive as the target expresses it, with the vCPU count submitted. */
  desired(): AppliedAllocation | null {
    const d = this.cgroup.desired();
    return d && { ...d, cpuCount: this.wantVcpus };
  }

  /** What is in force: the cgroup's values and the CPUs the guest kernel says are online. */
  applied(): AppliedAllocation {
    return { ...this.cgroup.applied(), cpuCount: this.onlineVcpus() };
  }

  private onlineVcpus(): number {
    return this.cpus ? this.cpus.status().applied : this.consoleVcpus();
  }

  /** CPUs online as the guest's console says so far (whole lines only; the boot CPU counted). */
  private consoleVcpus(): number {
    const text = this.consolePartial + this.console.read();
    const end = text.lastIndexOf("\n") + 1;
    this.consolePartial = text.slice(end);
    if (end > 0) this.consoleOnline = applyConsole(this.consoleOnline, text.slice(0, end));
    return this.consoleOnline.size;
  }

  /** The vCPU side as Desired → Plugged → Applied, with when it was asked for. */
  vcpus(): QemuVcpuStatus {
    const s = this.cpus?.status();
    return {
      desired: this.wantVcpus,
      plugged: s?.plugged ?? null,
      applied: this.onlineVcpus(),
      appliedAtMs: s?.appliedAtMs ?? null,
      lastError: s?.lastError ?? null,
      gone: this.goneNow() !== null && !this.closed,
      requestedAtMs: this.requestedAtMs,
      connected: this.cpus !== null,
    };
  }

  /** Resolves when no vCPU change is in flight (tests, orderly shutdown). */
  async settled(): Promise<void> {
    await this.cpus?.idle();
  }

  stats(): ActuatorStats {
    const c = this.cgroup.stats();
    return {
      writes: c.writes + this.counters.writes,
      failedWrites: c.failedWrites + this.counters.failedWrites,
      unchangedSkips: c.unchangedSkips + this.counters.unchangedSkips,
    };
  }

  quotaFloorCpuMillis(): number {
    return this.cgroup.quotaFloorCpuMillis();
  }

  abilities(): ActuatorAbilities {
    return this.cgroup.abilities();
  }

  /** Closes the cgroup files now and QMP once a vCPU change in flight is done (bounded). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cgroup.close();
    const qmp = this.qmp;
    if (!qmp) return;
    const timer = setTimeout(() => qmp.close(), QEMU_CONNECT_TIMEOUT_MS);
    timer.unref();
    void (this.cpus?.idle() ?? Promise.resolve()).finally(() => {
      clearTimeout(timer);
      qmp.close();
    });
  }
}

export class QemuBackend implements ActuatorBackend {
  readonly name = "qemu";
  readonly handles = ["qemu"] as const;
  readonly capabilities = QEMU_CAPABILITIES;
  private readonly cgroups: CgroupBackend;
  private readonly now: () => number;
  private readonly connectTimeoutMs: number;

  constructor(o: { cgroupfs: string; now?: () => number; connectTimeoutMs?: number }) {
    this.cgroups = new CgroupBackend({ cgroupfs: o.cgroupfs });
    this.now = o.now ?? Date.now;
    this.connectTimeoutMs = o.connectTimeoutMs ?? QEMU_CONNECT_TIMEOUT_MS;
  }

  open(target: ActuatorTarget): QemuActuator {
    return this.openAs(target, false);
  }

  openDryRun(target: ActuatorTarget): QemuActuator {
    return this.openAs(target, true);
  }

  private openAs(target: ActuatorTarget, dryRun: boolean): QemuActuator {
    const t = qemuTarget(target);
    const cgroupTarget = { partition: t.partition, cgroup: t.qemu.cgroup };
    const cgroup = dryRun ? this.cgroups.openDryRun(cgroupTarget) : this.cgroups.open(cgroupTarget);
    for (const [what, file] of [
      ["QMP socket", t.qemu.qmpSocket],
      ["serial console", t.qemu.consoleLog],
    ] as const)
      if (!existsSync(file)) {
        cgroup.close();
        throw gone(t.partition, `${what} ${file} does not exist (QEMU not running?)`);
      }
    return new QemuActuator({
      target: t,
      cgroup,
      dryRun,
      now: this.now,
      connectTimeoutMs: this.connectTimeoutMs,
    });
  }
}

export const qemuRegistration: BackendRegistration = {
  name: "qemu",
  handles: ["qemu"],
  capabilities: QEMU_CAPABILITIES,
  description:
    "a QEMU guest: cap and weight on QEMU's cgroup, CPU count by QMP vCPU hot-plug the guest onlines",
  create: (ctx) => new QemuBackend({ cgroupfs: ctx.roots.cgroupfs, now: ctx.now }),
};
