// A guest's vCPU count as Desired → Plugged → Applied (the way Kubernetes reports an
// in-place resize): Desired is what weir asked for (within [min, max]); Plugged is what QEMU
// has (query-cpus-fast); Applied is what the guest kernel says it runs, from its own console
// lines. `request()` returns at once; one background loop plugs or unplugs a vCPU at a time,
// so a cycle never waits on QMP. A QMP error is kept as `lastError` and retried on the next
// request; QEMU gone (QMP closed) is terminal for this guest: `gone` is set and nothing more
// is tried, like a vanished cgroup.
// To shrink, by default nothing is unplugged: the directive for fewer CPUs reaches the guest's
// agent, which offlines them (the guest kernel allocating to itself), and the vCPUs stay
// plugged, halted, to be onlined again by a later directive. QEMU 7.2 under TCG corrupted its
// heap on a vCPU unplug: the next plug aborted it ("corrupted size vs. prev_size"), 2 s and
// 60 s after the unplug alike (docs/measured-facts.md, *vCPU hot-plug*). With `unplug: true`
// (untested on KVM here) a shrink unplugs the highest vCPU weir plugged before the directive:
// the guest kernel offlines an unplugged CPU itself, then QEMU frees the vCPU's slot.
import type { LogTail } from "./guest.ts";
import type { QmpClient } from "./qmp.ts";
import { pluggedVcpus, setVcpus } from "./vcpus.ts";

const ONLINE_RE = /smpboot: Booting Node \d+ Processor (\d+) APIC/;
const OFFLINE_RE = /smpboot: CPU (\d+) is now offline/;

/**
 * CPUs the guest kernel runs, after `text` (console output) is applied to `online`: a
 * "Booting … Processor N" line adds N, "CPU N is now offline" removes it. Pure.
 */
export function applyConsole(online: ReadonlySet<number>, text: string): Set<number> {
  const out = new Set(online);
  for (const line of text.split("\n")) {
    const on = ONLINE_RE.exec(line);
    if (on) out.add(Number(on[1]));
    const off = OFFLINE_RE.exec(line);
    if (off) out.delete(Number(off[1]));
  }
  return out;
}

export interface GuestCpusStatus {
  desired: number;
  plugged: number | null;
  /** CPUs the guest kernel says are online. */
  applied: number;
  /** When `applied` last reached `desired` (epoch ms), null before. */
  appliedAtMs: number | null;
  lastError: string | null;
  gone: boolean;
}

export class GuestCpus {
  private readonly qmp: QmpClient;
  private readonly tail: LogTail;
  private readonly minCpus: number;
  private readonly maxCpus: number;
  private readonly now: () => number;
  private online = new Set([0]);
  /** The console's last, unfinished line (a read can end mid-line). */
  private partial = "";
  private desired: number;
  private plugged: number | null = null;
  private appliedAtMs: number | null = null;
  private lastError: string | null = null;
  private running: Promise<void> | null = null;
  /** vCPU ids unplugged from this QEMU: never plugged again (planCpuStep). */
  private readonly used = new Set<string>();
  private readonly unplug: boolean;

  /** `tail` must follow the guest's console from boot (the boot CPU 0 is counted online). */
  constructor(o: {
    qmp: QmpClient;
    tail: LogTail;
    minCpus: number;
    maxCpus: number;
    now?: () => number;
    /** Unplug vCPUs to shrink (default false: the guest offlines them; see the header). */
    unplug?: boolean;
  }) {
    this.qmp = o.qmp;
    this.tail = o.tail;
    this.minCpus = Math.max(1, o.minCpus);
    this.maxCpus = Math.max(this.minCpus, o.maxCpus);
    this.desired = this.minCpus;
    this.now = o.now ?? Date.now;
    this.unplug = o.unplug ?? false;
  }

  /** Ask for `cpuCount` vCPUs (clamped to [min, max]); returns the desired count at once. */
  request(cpuCount: number): number {
    const want = Math.min(this.maxCpus, Math.max(this.minCpus, Math.floor(cpuCount)));
    this.desired = want;
    if (!this.qmp.closed && this.running === null) {
      this.running = this.converge().finally(() => {
        this.running = null;
      });
    }
    return want;
  }

  /** Resolves when the background loop (if any) has stopped. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  status(): GuestCpusStatus {
    this.observe();
    return {
      desired: this.desired,
      plugged: this.plugged,
      applied: this.online.size,
      appliedAtMs: this.appliedAtMs,
      lastError: this.lastError,
      gone: this.qmp.closed,
    };
  }

  private observe(): void {
    const text = this.partial + this.tail.read();
    const end = text.lastIndexOf("\n") + 1;
    this.partial = text.slice(end);
    if (end > 0) this.online = applyConsole(this.online, text.slice(0, end));
    if (this.online.size === this.desired && this.appliedAtMs === null)
      this.appliedAtMs = this.now();
    if (this.online.size !== this.desired) this.appliedAtMs = null;
  }

  private async converge(): Promise<void> {
    for (;;) {
      const want = this.desired;
      try {
        // without unplug, QEMU keeps at least what it has: only the guest offlines
        const target = this.unplug ? want : Math.max(want, await pluggedVcpus(this.qmp));
        await setVcpus(this.qmp, target, { used: this.used });
        this.plugged = await pluggedVcpus(this.qmp);
        this.lastError = null;
      } catch (e) {
        this.lastError = (e as Error).message;
        return;
      }
      if (this.desired === want) return;
    }
  }
}
