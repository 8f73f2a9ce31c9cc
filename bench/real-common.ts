// What the benchmarks on the real testbed share (conservation-real, reaction-real, goals-real,
// goals-tiers-real, scenarios-real, overhead): the packet servers' cost and the CPU kept back
// for the generator, the median-and-range figures, the rotation of the policy order between
// repetitions, the reaction to a load step, and small host readings. Median and range
// (`stats`, `fmtStats`) are harness.ts's.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { CycleRecord } from "../src/core/model.ts";
import { type HeldHostCpu, hostCpuFromSamples } from "../src/sensors/host-cpu.ts";
import type { HostCpuSample } from "../src/sensors/types.ts";
import { readUsageNs, stats } from "./harness.ts";

/** SHA-256 rounds per request of the real benchmarks' packet servers (the probes measure what that costs here). */
export const COST_ROUNDS = 40;
/** Kept back for the load generator and manager, which run on the same 2 CPUs. */
export const RESERVE_CPU_MILLIS = 300;
/** cpu.shares of the testbed and of this process against everything else on the host. */
export const GROUP_CPU_SHARES = 16_384;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const epochNow = () => performance.timeOrigin + performance.now();

/** The host's load average (1, 5, 15 min), for the notes. */
export const loadAvg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

/** `list` rotated left by `k` (the policy order of repetition k). */
export const rotate = <T>(list: readonly T[], k: number): T[] =>
  list.map((_, i) => list[(i + k) % list.length]!);

/**
 * Reaction to a load step: from `stepAtMs` to the first record whose applied entitlement for
 * `id` has covered 90 % of the way from the level before the step (median of the records in
 * the `beforeMs` before it) to the level after (median of the records after `settledFromMs`).
 * Times are the records' start plus their duration (when the writes were done). Null when the
 * entitlement did not rise by at least `minRiseMillis`, or never got there.
 */
export function reactionMs(
  records: Array<Pick<CycleRecord, "startedAtMs" | "timingsMs" | "partitions">>,
  id: string,
  stepAtMs: number,
  opts: { beforeMs: number; settledFromMs: number; minRiseMillis: number },
): { ms: number | null; fromMillis: number; toMillis: number } | null {
  const pts = records
    .map((r) => ({
      t: r.startedAtMs + r.timingsMs.total,
      m: r.partitions.find((p) => p.id === id)?.directive?.cpuMillis,
    }))
    .filter((p): p is { t: number; m: number } => typeof p.m === "number");
  const before = stats(
    pts.filter((p) => p.t < stepAtMs && p.t >= stepAtMs - opts.beforeMs).map((p) => p.m),
  );
  const after = stats(pts.filter((p) => p.t >= opts.settledFromMs).map((p) => p.m));
  if (!before || !after) return null;
  const out = { fromMillis: before.median, toMillis: after.median };
  if (after.median - before.median < opts.minRiseMillis) return { ms: null, ...out };
  const level = before.median + 0.9 * (after.median - before.median);
  const hit = pts.find((p) => p.t >= stepAtMs && p.m >= level);
  return { ms: hit ? Math.max(0, hit.t - stepAtMs) : null, ...out };
}

/** CPU of the hog and the host's idle fraction between mark() and read(). */
export class Window {
  private hog0 = 0;
  private host0: HostCpuSample | null = null;
  private t0 = 0;
  constructor(
    private readonly hostCpu: HeldHostCpu,
    private readonly hogDirs: string[],
  ) {}
  mark(): void {
    this.t0 = performance.now();
    this.hog0 = readUsageNs(this.hogDirs);
    this.host0 = this.hostCpu.read(epochNow());
  }
  read(): { hogCores: number; hostIdle: number } {
    const ms = performance.now() - this.t0;
    const hogCores = (readUsageNs(this.hogDirs) - this.hog0) / 1e6 / ms;
    const use = this.host0 ? hostCpuFromSamples(this.host0, this.hostCpu.read(epochNow())) : null;
    return { hogCores, hostIdle: use?.idleFraction ?? Number.NaN };
  }
}

/** Pin every thread of `pid` to `cpus` (taskset -a -p); returns the previous list. */
export function pin(pid: number, cpus: string): string {
  const before = execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], {
    encoding: "utf8",
  });
  const m = /current affinity list: (\S+)/.exec(before);
  return m?.[1] ?? "0-1";
}

/** SCHED_FIFO priority of the load generator (see realtimeGenerator). */
export const GENERATOR_FIFO_PRIORITY = 1;
/** RT budget per second given to the generator's cgroup and its parent on a v1 host with RT groups. */
export const GENERATOR_RT_RUNTIME_US = 500_000;

/**
 * Puts every thread of this process (the load generator, which stands for remote clients, and
 * the manager beside it) in SCHED_FIFO at priority 1 (`chrt -a -f -p`), so it reads a reply
 * when the reply arrives instead of waiting behind a packet server for a CPU. With a hog
 * running, no CPU is ever idle: a CFS generator woken by a reply was queued behind a server
 * (perf sched: its wake-up delay p99 rose from 0.2–0.6 ms to 1.3–1.5 ms) and that wait was
 * counted in the server's p99. A remote client has its own CPU; FIFO is the closest this host
 * gets. Where the v1 cpu hierarchy has RT group scheduling (`cpu.rt_runtime_us`), `budgetDirs`
 * (parent first) get GENERATOR_RT_RUNTIME_US per second, since a group's default budget is 0.
 * Returns the undo (SCHED_OTHER again, budgets back to 0), or the reason it could not.
 */
export function realtimeGenerator(budgetDirs: string[]): { undo: () => void } | { error: string } {
  const budgets = budgetDirs.filter((d) => fs.existsSync(path.join(d, "cpu.rt_runtime_us")));
  const setBudgets = (us: number, dirs: string[]) => {
    for (const d of dirs) fs.writeFileSync(path.join(d, "cpu.rt_runtime_us"), String(us));
  };
  const chrt = (args: string[]) =>
    execFileSync("chrt", [...args, String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] });
  try {
    setBudgets(GENERATOR_RT_RUNTIME_US, budgets);
    chrt(["-a", "-f", "-p", String(GENERATOR_FIFO_PRIORITY)]);
  } catch (err) {
    try {
      setBudgets(0, [...budgets].reverse());
    } catch {
      // the budgets stay; the cgroups are removed with the testbed
    }
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { error: stderr || (err as Error).message };
  }
  return {
    undo: () => {
      chrt(["-a", "-o", "-p", "0"]);
      setBudgets(0, [...budgets].reverse());
    },
  };
}
