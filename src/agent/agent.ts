// The agent: runs inside a partition, reads its own counters, computes its velocity from
// cumulative counters (packets served per CPU-second over its own window), reports every
// interval, and applies each new directive to itself: its own delegated cgroup (through
// src/actuators), CPUs online/offline (a VM), and a hook command for applications.

import type { PartitionActuator } from "../actuators/types.ts";
import { stepFreeNowMs } from "../core/clock.ts";
import { isWeirError } from "../core/errors.ts";
import type { Directive } from "../core/model.ts";
import { counterDelta, secondsFromNs } from "../core/units.ts";
import {
  type DirectiveMessage,
  encodeReport,
  REPORT_BYTES,
  type RejectCounts,
  type ReportMessage,
  sequenceCounter,
} from "../transport/codec.ts";
import { type MacKey, macKey } from "../transport/mac.ts";
import type { AgentChannel } from "../transport/source.ts";
import type { CpuOnlineController, HookRunner } from "./apply.ts";
import type { AgentCounterSource, AgentCounters } from "./counters.ts";

export interface AgentOptions {
  partitionIndex: number;
  key: Uint8Array;
  channel: AgentChannel;
  counters: AgentCounterSource;
  /** Report period. */
  intervalMs: number;
  /** How often to look for a directive (default min(intervalMs, 50)). */
  directivePollMs?: number;
  /** Below this much CPU in a window the velocity is unknown (cpuacct moves in 4 ms ticks). */
  minCpuNsForVelocity?: number;
  /** Own delegated cgroup, written through an actuator backend. */
  actuator?: PartitionActuator;
  cpuOnline?: CpuOnlineController;
  hook?: HookRunner;
  now?: () => number;
  onEvent?: (e: AgentEvent) => void;
}

export type AgentEvent =
  | { kind: "report"; report: ReportMessage }
  | { kind: "directive"; directive: DirectiveMessage; changed: boolean; written: string[] }
  /** CPUs brought back in line with the applied count (a vCPU was hot-plugged or went away). */
  | { kind: "cpus"; cpuCount: number; written: string[] }
  | { kind: "error"; where: "counters" | "apply" | "publish"; code: string; message: string };

export interface AgentStats {
  reports: number;
  directives: number;
  applied: number;
  errors: number;
  rejectedDirectives: RejectCounts;
}

/** Velocity over one window: served packets ÷ CPU-seconds, or null when too little CPU was used. */
export function velocityOf(
  prev: AgentCounters,
  next: AgentCounters,
  minCpuNs: number,
): number | null {
  if (next.cpuUsageNs < prev.cpuUsageNs || next.txPackets < prev.txPackets) return null; // reset
  const cpuNs = counterDelta(prev.cpuUsageNs, next.cpuUsageNs);
  if (cpuNs < minCpuNs) return null;
  return counterDelta(prev.txPackets, next.txPackets) / secondsFromNs(cpuNs);
}

export class Agent {
  private readonly o: AgentOptions;
  private readonly now: () => number;
  private readonly nextSequence: () => number;
  private readonly out = new Uint8Array(REPORT_BYTES);
  private readonly mac: MacKey;
  private prev: { counters: AgentCounters; atMs: number } | null = null;
  private lastApplied: {
    cpuMillis: number;
    weight: number;
    cpuCount: number;
    idle: boolean;
  } | null = null;
  private readonly s = { reports: 0, directives: 0, applied: 0, errors: 0 };

  constructor(o: AgentOptions) {
    this.o = o;
    this.now = o.now ?? stepFreeNowMs;
    this.nextSequence = sequenceCounter(this.now);
    this.mac = macKey(o.key);
  }

  /** Read counters, compute velocity, sign and publish one report. Null when counters failed. */
  tick(): ReportMessage | null {
    let counters: AgentCounters;
    const atMs = this.now();
    try {
      counters = this.o.counters.read();
    } catch (err) {
      this.error("counters", err);
      return null;
    }
    const prev = this.prev;
    const velocity = prev
      ? velocityOf(prev.counters, counters, this.o.minCpuNsForVelocity ?? 1e6)
      : null;
    const report: ReportMessage = {
      partitionIndex: this.o.partitionIndex,
      sequence: this.nextSequence(),
      timestampMs: atMs,
      ...counters,
      velocityPacketsPerCpuSec: velocity,
      velocityWindowMs: prev ? Math.max(0, Math.min(0xffffffff, Math.round(atMs - prev.atMs))) : 0,
    };
    this.prev = { counters, atMs };
    try {
      this.o.channel.publish(encodeReport(report, this.mac, this.out));
    } catch (err) {
      this.error("publish", err);
      return null;
    }
    this.s.reports++;
    this.o.onEvent?.({ kind: "report", report });
    return report;
  }

  /** Look for a new directive and apply it. Returns it when there was one. */
  pollDirective(): DirectiveMessage | null {
    const d = this.o.channel.pollDirective();
    if (d === null) return null;
    this.apply(d);
    return d;
  }

  /**
   * Apply a verified directive. Unchanged allocations are not re-applied (a cgroup write
   * refills the period's runtime; a hook run costs a process); changed ones go to the
   * cgroup, the CPU count and the hook.
   */
  apply(d: DirectiveMessage): string[] {
    this.s.directives++;
    const last = this.lastApplied;
    const changed =
      last === null ||
      last.cpuMillis !== d.cpuMillis ||
      last.weight !== d.weight ||
      last.cpuCount !== d.cpuCount ||
      last.idle !== (d.idle ?? false);
    const written: string[] = [];
    if (changed) {
      let ok = true;
      if (this.o.actuator) {
        // The wire carries what to write: a cap (Infinity = none), the weight, the idle class.
        // It has no burst field, so an agent writes no burst.
        const capped = Number.isFinite(d.cpuMillis);
        const directive: Directive = {
          partition: this.o.actuator.partition,
          cpuMillis: capped ? d.cpuMillis : 0,
          weight: d.weight,
          idle: d.idle ?? false,
          capCpuMillis: d.cpuMillis,
          burstCpuMillis: 0,
          capReason: capped ? "capped" : null,
          cpuCount: d.cpuCount,
        };
        const r = this.o.actuator.apply(directive);
        written.push(...r.written);
        if (r.error) {
          ok = false;
          this.s.errors++;
          this.o.onEvent?.({ kind: "error", where: "apply", ...r.error });
        }
      }
      if (this.o.cpuOnline) {
        try {
          written.push(...this.o.cpuOnline.apply(d.cpuCount));
        } catch (err) {
          ok = false;
          this.error("apply", err);
        }
      }
      this.o.hook?.trigger({
        cpuMillis: d.cpuMillis,
        cpuCount: d.cpuCount,
        weight: d.weight,
        partitionIndex: d.partitionIndex,
      });
      // A failed write is retried with the next directive, even an unchanged one.
      this.lastApplied = ok
        ? { cpuMillis: d.cpuMillis, weight: d.weight, cpuCount: d.cpuCount, idle: d.idle ?? false }
        : null;
      if (ok) this.s.applied++;
    }
    this.o.onEvent?.({ kind: "directive", directive: d, changed, written });
    return written;
  }

  /**
   * Bring the CPUs back to the last applied count when the set of CPUs changed under it. A
   * vCPU the host hot-plugs arrives offline and nothing in a guest kernel without a uevent
   * helper onlines it, so the agent does once the directive asks for it; one the host
   * unplugs the kernel offlines itself. Writes only what differs (usually nothing).
   */
  reconcileCpus(): string[] {
    const last = this.lastApplied;
    if (!this.o.cpuOnline || last === null) return [];
    let written: string[];
    try {
      written = this.o.cpuOnline.apply(last.cpuCount);
    } catch (err) {
      this.error("apply", err);
      return [];
    }
    if (written.length > 0) this.o.onEvent?.({ kind: "cpus", cpuCount: last.cpuCount, written });
    return written;
  }

  /** Report every intervalMs (and reconcile CPUs), poll directives, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const pollMs = this.o.directivePollMs ?? Math.min(this.o.intervalMs, 50);
    let nextReport = this.now();
    while (!signal.aborted) {
      const t = this.now();
      if (t >= nextReport) {
        this.tick();
        this.reconcileCpus();
        // Steady cadence; after a long stall start again from now rather than bursting.
        nextReport += this.o.intervalMs;
        if (nextReport < t) nextReport = t + this.o.intervalMs;
      }
      this.pollDirective();
      const wait = Math.max(1, Math.min(pollMs, nextReport - this.now()));
      await sleep(wait, signal);
    }
  }

  stats(): AgentStats {
    return { ...this.s, rejectedDirectives: this.o.channel.rejected() };
  }

  close(): void {
    this.o.channel.close();
    this.o.counters.close();
    this.o.actuator?.close();
  }

  private error(where: "counters" | "apply" | "publish", err: unknown): void {
    this.s.errors++;
    this.o.onEvent?.({
      kind: "error",
      where,
      code: isWeirError(err) ? err.code : "ERROR",
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
