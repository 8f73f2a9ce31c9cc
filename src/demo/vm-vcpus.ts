// The vCPUs each guest kernel has online, followed on its serial console while the manager
// runs: one sample a second (VcpuSample, for the phases' vCPU columns), and the time from each
// directive that raised a guest's CPU count to the console line of that CPU online. Used by
// `weir demo --vm` and `weir bench vm-balance`.
import type { CycleRecord } from "../core/model.ts";
import { LogTail } from "../vm/guest.ts";
import { applyConsole } from "../vm/guest-cpus.ts";
import type { VcpuSample } from "./vm-phase.ts";
import type { DirectiveToOnline } from "./vm-summary.ts";

export class GuestVcpuWatch {
  readonly samples: VcpuSample[] = [];
  /** Directives that raised a guest's count and the ms until its kernel had that many online. */
  readonly directiveToOnline: DirectiveToOnline[] = [];
  private readonly tails: Map<string, LogTail>;
  private readonly online: Map<string, Set<number>>;
  private readonly partial: Map<string, string>;
  private readonly waiting = new Map<string, { atMs: number; cpuCount: number }>();
  private lastCycle = -1;
  private readonly timers: NodeJS.Timeout[] = [];

  /**
   * `records` is the manager's record list as it grows; times are ms since `t0` (epoch ms).
   * Every guest starts with its boot CPU online.
   */
  constructor(
    vms: ReadonlyArray<{ name: string; serialLog: string }>,
    private readonly records: readonly CycleRecord[],
    private readonly t0: number,
  ) {
    this.tails = new Map(
      vms.map((vm) => [vm.name, new LogTail(vm.serialLog, { keepText: false })]),
    );
    this.online = new Map(vms.map((vm) => [vm.name, new Set([0])]));
    this.partial = new Map(vms.map((vm) => [vm.name, ""]));
    this.lastCycle = records.at(-1)?.cycle ?? -1;
  }

  start(): void {
    this.timers.push(
      setInterval(() => this.poll(), 100),
      setInterval(() => {
        this.samples.push({
          tMs: Date.now() - this.t0,
          vcpus: Object.fromEntries([...this.online].map(([n, s]) => [n, s.size])),
        });
      }, 1000),
    );
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  /** Directives whose CPU never came online (ms null), at the time of the call. */
  notOnline(): DirectiveToOnline[] {
    return [...this.waiting].map(([partition, w]) => ({
      partition,
      cpuCount: w.cpuCount,
      ms: null,
      atMs: Math.round(w.atMs - this.t0),
    }));
  }

  private poll(): void {
    const now = Date.now();
    for (const r of this.records) {
      if (r.cycle <= this.lastCycle) continue;
      this.lastCycle = r.cycle;
      for (const p of r.partitions) {
        if (!p.written.includes("vcpus") || !p.directive) continue;
        const before = this.online.get(p.id)?.size ?? 1;
        if (p.directive.cpuCount > before)
          this.waiting.set(p.id, { atMs: r.startedAtMs, cpuCount: p.directive.cpuCount });
      }
    }
    for (const [name, tail] of this.tails) {
      const text = this.partial.get(name)! + tail.read();
      const end = text.lastIndexOf("\n") + 1;
      this.partial.set(name, text.slice(end));
      const next = applyConsole(this.online.get(name)!, text.slice(0, end));
      const w = this.waiting.get(name);
      if (w && next.size >= w.cpuCount) {
        this.directiveToOnline.push({
          partition: name,
          cpuCount: w.cpuCount,
          ms: Math.round(now - w.atMs),
          atMs: Math.round(w.atMs - this.t0),
        });
        this.waiting.delete(name);
      }
      this.online.set(name, next);
    }
  }
}
