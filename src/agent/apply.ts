// How an agent applies a directive to its own partition: CPUs online/offline (a VM's
// kernel allocating to itself) and a hook command so applications can resize themselves.
// (Its own delegated cgroup is written through src/actuators, see agent.ts.)
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";

/**
 * Brings exactly the first `cpuCount` CPUs (by number) online and the rest offline through
 * `<sysfs>/devices/system/cpu/cpuN/online`. A CPU without an `online` file (usually cpu0)
 * cannot be taken offline and counts as one of the online ones. Never fewer than one CPU.
 * Writes only files whose value differs.
 */
export class CpuOnlineController {
  private readonly dir: string;
  constructor(sysfs: string) {
    this.dir = path.join(sysfs, "devices", "system", "cpu");
  }

  /** CPU numbers present, ascending, each with whether it can be switched. */
  cpus(): Array<{ n: number; switchable: boolean; online: boolean }> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (cause) {
      throw new WeirError(ErrorCodes.COUNTER_UNREADABLE, `cannot list ${this.dir}`, { cause });
    }
    return names
      .filter((n) => /^cpu\d+$/.test(n))
      .map((n) => Number(n.slice(3)))
      .sort((a, b) => a - b)
      .map((n) => {
        const file = path.join(this.dir, `cpu${n}`, "online");
        try {
          return { n, switchable: true, online: readFileSync(file, "utf8").trim() === "1" };
        } catch {
          return { n, switchable: false, online: true };
        }
      });
  }

  /** Apply a CPU count; returns the files written. */
  apply(cpuCount: number): string[] {
    const want = Math.max(1, Math.floor(cpuCount));
    const written: string[] = [];
    this.cpus().forEach((cpu, i) => {
      if (!cpu.switchable) return;
      const online = i < want;
      if (online === cpu.online) return;
      const file = path.join(this.dir, `cpu${cpu.n}`, "online");
      try {
        writeFileSync(file, online ? "1" : "0");
      } catch (cause) {
        throw new WeirError(ErrorCodes.AGENT, `cannot write ${file}`, {
          cause,
          retryable: true,
        });
      }
      written.push(file);
    });
    return written;
  }
}

export interface HookAllocation {
  /** The cap in millicores; Infinity = no cap (WEIR_CPU_MILLIS=max). */
  cpuMillis: number;
  cpuCount: number;
  weight: number;
  partitionIndex: number;
}

export interface HookResult {
  allocation: HookAllocation;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
}

/**
 * Runs the hook command (`sh -c`) with the new allocation in WEIR_CPU_MILLIS,
 * WEIR_CPU_COUNT, WEIR_WEIGHT and WEIR_PARTITION_INDEX. One run at a time: allocations that
 * arrive while it runs are coalesced and the newest runs next. A run longer than
 * `timeoutMs` is killed.
 */
export class HookRunner {
  private running: Promise<void> | null = null;
  private pending: HookAllocation | null = null;
  private runs = 0;

  constructor(
    private readonly command: string,
    private readonly opts: {
      timeoutMs?: number;
      onResult?: (r: HookResult) => void;
      env?: NodeJS.ProcessEnv;
      now?: () => number;
    } = {},
  ) {}

  /** Queue a run for this allocation (coalesced with any not yet started). */
  trigger(allocation: HookAllocation): void {
    this.pending = allocation;
    if (this.running === null) this.running = this.drain();
  }

  /** Resolves when no run is in progress or queued. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  get completedRuns(): number {
    return this.runs;
  }

  private async drain(): Promise<void> {
    while (this.pending !== null) {
      const a = this.pending;
      this.pending = null;
      const r = await this.runOnce(a);
      this.runs++;
      this.opts.onResult?.(r);
    }
    this.running = null;
  }

  private runOnce(a: HookAllocation): Promise<HookResult> {
    const now = this.opts.now ?? Date.now;
    const start = now();
    return new Promise((resolve) => {
      // Its own process group, so a timeout kills what the hook started too (`sh -c "sleep 30"`
      // forks sleep: killing sh alone left sleep running, holding the agent's stdout/stderr).
      const child = spawn("/bin/sh", ["-c", this.command], {
        detached: true,
        stdio: ["ignore", "inherit", "inherit"],
        env: {
          ...(this.opts.env ?? process.env),
          WEIR_CPU_MILLIS: Number.isFinite(a.cpuMillis) ? String(Math.round(a.cpuMillis)) : "max",
          WEIR_CPU_COUNT: String(a.cpuCount),
          WEIR_WEIGHT: String(a.weight),
          WEIR_PARTITION_INDEX: String(a.partitionIndex),
        },
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          if (child.pid !== undefined)
            process.kill(-child.pid, "SIGKILL"); // the hook's group
          else child.kill("SIGKILL");
        } catch {
          child.kill("SIGKILL"); // the group is gone already: the shell alone
        }
      }, this.opts.timeoutMs ?? 10_000);
      let finished = false;
      const done = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve({ allocation: a, exitCode, signal, timedOut, durationMs: now() - start });
      };
      child.once("error", () => done(null, null));
      child.once("exit", done);
    });
  }
}
