// What the benchmarks on the real testbed share (conservation-real, reaction-real, goals-real,
// goals-tiers-real, scenarios-real, overhead): the packet servers' cost and the CPU kept back
// for the generator, the median-and-range figures, the rotation of the policy order between
// repetitions, the reaction to a load step, and small host readings. Median and range
// (`stats`, `fmtStats`) are harness.ts's.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { locateCgroup } from "../src/cgroup/paths.ts";
import type { CycleRecord } from "../src/core/model.ts";
import { cpusAllowedOf, readReachableCpus } from "../src/sensors/cpuset.ts";
import { type HeldHostCpu, hostCpuFromSamples } from "../src/sensors/host-cpu.ts";
import { defaultRoots, type HostCpuSample } from "../src/sensors/types.ts";
import { cgroupProcs, pinCgroupMembers } from "../src/testbed/cgroups.ts";
import type { TestbedPartition } from "../src/testbed/state.ts";
import { readUsageNs, stats } from "./harness.ts";

/** SHA-256 rounds per request of the real benchmarks' packet servers (the probes measure what that costs here). */
export const COST_ROUNDS = 40;
/** Kept back for the load generator and manager, which run on the same 2 CPUs. */
export const RESERVE_CPU_MILLIS = 300;
/** cpu.shares of the testbed and of this process against everything else on the host. */
export const GROUP_CPU_SHARES = 16_384;

/**
 * What the real runs' baselines do beyond their names (src/policy/baselines/README.md), for the
 * notes of every benchmark that runs them: the figures of VPA-style and Koordinator-style read
 * against these.
 */
export const BASELINES_ON_THE_TESTBED_NOTE =
  "Baselines on this testbed (src/policy/baselines/README.md): VPA-style sets every partition's request, the hog's included, as a VPA over all pods would; with seconds of history its upper bounds lie far above the servers' use, so the servers keep their initial equal share (425m each) while the hog's request is raised to its p90 use × 1.15 within a few 1-s loops (about 1,550m for a hog using 1.3 cores: 3.6 times a server's cpu.shares) — why it can read worse than plain CFS, which gives all four the same cpu.shares. Koordinator-style takes 65 % of the 1,700m weir manages (1,105m − LS use for best-effort), where Koordinator takes 65 % of the node's 2,000m less max(system use, reservation) — about 1,000m − LS use with the generator's 300m — and its best-effort weight 1 is cpu.shares 10 on this cgroup v1 host, not the kubelet's 2.";

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
 * entitlement did not rise by at least `minRiseMillis`, or never got there. `stepAtMs` is
 * returned as given (a trace of the cycles around the step is timed from it).
 */
export function reactionMs(
  records: Array<Pick<CycleRecord, "startedAtMs" | "timingsMs" | "partitions">>,
  id: string,
  stepAtMs: number,
  opts: { beforeMs: number; settledFromMs: number; minRiseMillis: number },
): { ms: number | null; fromMillis: number; toMillis: number; stepAtMs: number } | null {
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
  const out = { fromMillis: before.median, toMillis: after.median, stepAtMs };
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
  private self0: NodeJS.CpuUsage = { user: 0, system: 0 };
  constructor(
    private readonly hostCpu: HeldHostCpu,
    private readonly hogDirs: string[],
  ) {}
  mark(): void {
    this.t0 = performance.now();
    this.hog0 = readUsageNs(this.hogDirs);
    this.host0 = this.hostCpu.read(epochNow());
    this.self0 = process.cpuUsage();
  }
  /**
   * Over the window: the hog's cores, the host's idle fraction, and where the rest of the
   * host's busy CPU went — this process (manager and load generator) and everything else
   * (`otherCores`: the host's busy cores less the hog's and this process's; other tenants
   * of the machine, the partitions' servers, kernel threads).
   */
  read(): {
    hogCores: number;
    hostIdle: number;
    selfCores: number;
    otherCores: number;
    cpus: number;
  } {
    const ms = performance.now() - this.t0;
    const hogCores = (readUsageNs(this.hogDirs) - this.hog0) / 1e6 / ms;
    const self = process.cpuUsage(this.self0);
    const selfCores = (self.user + self.system) / 1000 / ms;
    const use = this.host0 ? hostCpuFromSamples(this.host0, this.hostCpu.read(epochNow())) : null;
    return {
      hogCores,
      hostIdle: use?.idleFraction ?? Number.NaN,
      selfCores,
      otherCores: use ? Math.max(0, use.busyCores - hogCores - selfCores) : Number.NaN,
      cpus: use?.cpus ?? Number.NaN,
    };
  }
}

/**
 * Pin every process in each partition's cgroups to CPU `cpu` (pinCgroupMembers: the server and
 * any child of it, such as the esbuild service tsx starts in a server run from the sources), then
 * check that weir reads the same: each partition's reachable CPUs (readReachableCpus, its cpuset ∩
 * its threads' affinity) must be exactly [cpu], or a benchmark that says "capacity held to the
 * pinned CPU" would measure weir at its configured capacity. Throws naming the partition, what
 * weir read and every member process's CPU list. Returns each pid's list before, to undo.
 */
export function pinPartitions(
  partitions: readonly TestbedPartition[],
  cpu: number,
): Array<[number, string]> {
  const before = partitions.flatMap((p) => pinCgroupMembers(p.cgroupDirs, String(cpu)));
  for (const p of partitions) {
    const reach = readReachableCpus(
      defaultRoots,
      p.cgroup,
      locateCgroup(defaultRoots.cgroupfs, p.cgroup).threadsFile,
    );
    if (reach?.cpus.length === 1 && reach.cpus[0] === cpu) continue;
    const members = [...new Set(p.cgroupDirs.flatMap(cgroupProcs))].map((pid) => {
      let status = "";
      try {
        status = fs.readFileSync(`/proc/${pid}/status`, "latin1");
      } catch {
        return `pid ${pid} (gone)`;
      }
      const name = /^Name:\t(.*)$/m.exec(status)?.[1] ?? "?";
      return `pid ${pid} ${name} on CPUs ${cpusAllowedOf(status)?.join(",") ?? "?"}`;
    });
    throw new Error(
      `partition ${p.name}: pinned to CPU ${cpu}, but weir reads its reachable CPUs as ${reach ? `[${reach.cpus.join(",")}] (${reach.source})` : "unknown"}; its cgroup holds ${members.join("; ") || "no process"}`,
    );
  }
  return before;
}

/** Pin every thread of `pid` to `cpus` (taskset -a -p); returns the previous list. */
export function pin(pid: number, cpus: string): string {
  const before = execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], {
    encoding: "utf8",
  });
  const m = /current affinity list: (\S+)/.exec(before);
  return m?.[1] ?? "0-1";
}

/** One cycle of a partition around a load step: what it was offered and used, and what it was given. */
export interface StepTraceRow {
  /** End of the cycle (when its writes were done), from the step; negative before it. */
  atMs: number;
  usedMillis: number;
  cpuDelayPercent: number | null;
  offeredPps: number;
  /** Replies per second over the window, and served ÷ offered (null with nothing offered). */
  servedPps: number;
  servedPercent: number | null;
  droppedPps: number;
  throttledPercent: number;
  /** The policy's (smoothed) packets per CPU-second this cycle, when it had one. */
  velocityPps: number | null;
  demandMillis: number | null;
  cpuMillis: number | null;
  /** The weight the directive stands for (1–10000). */
  weight: number | null;
  /** The host's idle CPU over the cycle's window, when the record has it. */
  hostIdlePercent: number | null;
  /** The decision's why. */
  why: string | null;
}

/**
 * Partition `id`'s cycles from the last one that ended before `stepAtMs` to the last one that
 * ended by `untilMs` (both epoch ms; times as in reactionMs), so a slow reaction shows whether
 * the partition's use rose late (it did not get the CPU) or its entitlement followed its use late.
 */
export function stepTrace(
  records: Array<Pick<CycleRecord, "startedAtMs" | "timingsMs" | "partitions" | "host">>,
  id: string,
  stepAtMs: number,
  untilMs: number,
): StepTraceRow[] {
  const rows: StepTraceRow[] = [];
  for (const r of records) {
    const end = r.startedAtMs + r.timingsMs.total;
    if (end > untilMs) break;
    const p = r.partitions.find((x) => x.id === id);
    if (!p?.throughput) continue;
    const row: StepTraceRow = {
      atMs: Math.round(end - stepAtMs),
      usedMillis: Math.round(p.throughput.cpuCores * 1000),
      cpuDelayPercent:
        p.throughput.cpuDelayFraction == null
          ? null
          : Math.round(p.throughput.cpuDelayFraction * 100),
      offeredPps: Math.round(p.throughput.offeredPacketsPerSec),
      servedPps: Math.round(p.throughput.servedPacketsPerSec),
      servedPercent:
        p.throughput.offeredPacketsPerSec > 0
          ? Math.round((p.throughput.servedPacketsPerSec / p.throughput.offeredPacketsPerSec) * 100)
          : null,
      droppedPps: Math.round(p.throughput.droppedPacketsPerSec),
      throttledPercent: Math.round(p.throughput.throttledFraction * 100),
      velocityPps:
        p.decision?.velocityPacketsPerCpuSec == null
          ? null
          : Math.round(p.decision.velocityPacketsPerCpuSec),
      demandMillis: p.decision ? Math.round(p.decision.demandCpuMillis) : null,
      cpuMillis: p.directive?.cpuMillis ?? null,
      weight: p.directive?.weight ?? null,
      hostIdlePercent: r.host ? Math.round(r.host.idleFraction * 100) : null,
      why: p.decision?.why ?? null,
    };
    if (end < stepAtMs) rows.length = 0;
    rows.push(row);
  }
  return rows;
}

/**
 * A step trace in one line for the notes: per cycle what a was offered and served, its drops,
 * throttling and CPU delay (the congestion signals), velocity, demand, entitlement and weight;
 * with `why`, the decision's own words too (`sep` between cycles).
 */
export const fmtStepTrace = (
  rows: StepTraceRow[],
  opts: { why?: boolean; sep?: string } = {},
): string =>
  rows
    .map(
      (r) =>
        `${r.atMs >= 0 ? "+" : ""}${r.atMs} ms: offered ${r.offeredPps}/s, served ${r.servedPps}/s (${r.servedPercent ?? "?"} %), dropped ${r.droppedPps}/s, throttled ${r.throttledPercent} %, uses ${r.usedMillis}m, delay ${r.cpuDelayPercent ?? "?"} %, velocity ${r.velocityPps ?? "?"}/cpu-s, demand ${r.demandMillis ?? "?"}m, entitlement ${r.cpuMillis ?? "?"}m, weight ${r.weight ?? "?"}, host idle ${r.hostIdlePercent ?? "?"} %${opts.why ? ` — "${r.why ?? ""}"` : ""}`,
    )
    .join(opts.sep ?? "; ");

/**
 * What can move the level a step's reaction is timed to (reactionMs: the median entitlement over
 * the last 1.5 s) with no change of load, from a step trace: the partition's cost per packet
 * (velocity) early after the step (+0.3–1.5 s) against the settled window, its entitlement
 * early against the timed level, and its drops in the settled window (a server the step
 * overloads ends at its overload's level, not its step's). NaN where no cycle had the figure.
 */
export interface StepDrift {
  earlyVelocityPps: number;
  lateVelocityPps: number;
  /** Median entitlement at +0.3–1.5 s, millicores. */
  earlyMillis: number;
  /** Median drops per second in the settled window. */
  lateDroppedPps: number;
  /** Cycles after the step whose decision probed upward. */
  probes: number;
}

/**
 * The last part of a step run whose median entitlement is the level its reaction is timed to
 * (reactionMs' settledFromMs is the load's end less this), ms.
 */
export const STEP_SETTLED_MS = 1500;
/** The early window after a step, ms from the step: past the first cycles, before the settled window. */
export const STEP_EARLY_MS = { from: 300, to: 1500 } as const;
/** The two windows in words (the notes' and tables' labels). */
export const STEP_EARLY_LABEL = `+${STEP_EARLY_MS.from / 1000}–${STEP_EARLY_MS.to / 1000} s`;
export const STEP_SETTLED_LABEL = `the last ${STEP_SETTLED_MS / 1000} s`;

/** `loadEndMs`: the load's end, ms from the step; the settled window is its last STEP_SETTLED_MS. */
export function stepDrift(rows: readonly StepTraceRow[], loadEndMs: number): StepDrift {
  const settledFromMs = loadEndMs - STEP_SETTLED_MS;
  const median = (pick: (r: StepTraceRow) => number | null, from: number, to: number) =>
    stats(
      rows
        .filter((r) => r.atMs >= from && r.atMs < to)
        .map(pick)
        .filter((x): x is number => x != null),
    )?.median ?? Number.NaN;
  const { from, to } = STEP_EARLY_MS;
  const late = Number.POSITIVE_INFINITY;
  return {
    earlyVelocityPps: median((r) => r.velocityPps, from, to),
    lateVelocityPps: median((r) => r.velocityPps, settledFromMs, late),
    earlyMillis: median((r) => r.cpuMillis, from, to),
    lateDroppedPps: median((r) => r.droppedPps, settledFromMs, late),
    probes: rows.filter((r) => r.atMs > 0 && r.why?.includes("probing")).length,
  };
}

/** A StepDrift in words, for the notes. */
export const fmtStepDrift = (d: StepDrift): string =>
  `velocity ${Math.round(d.earlyVelocityPps)} pkt/cpu-s at ${STEP_EARLY_LABEL}, ${Math.round(d.lateVelocityPps)} in ${STEP_SETTLED_LABEL} (× ${(d.lateVelocityPps / d.earlyVelocityPps).toFixed(2)}), entitlement ${Math.round(d.earlyMillis)}m at ${STEP_EARLY_LABEL}, ${Math.round(d.lateDroppedPps)} drops/s in ${STEP_SETTLED_LABEL}, ${d.probes} probe${d.probes === 1 ? "" : "s"} after the step`;

/** The v1 cpuset hierarchy. */
export const CPUSET_ROOT = "/sys/fs/cgroup/cpuset";
