// The demo's scenario and its summary arithmetic. Pure: no I/O, no clock.
import type { CycleRecord, PartitionId } from "../core/model.ts";
import { cpuMillisFromCores } from "../core/units.ts";

export interface DemoPhase {
  name: string;
  fromMs: number;
  toMs: number;
  /** The partition that gets the high rate in this phase (null: everyone moderate). */
  hot: PartitionId | null;
}

export interface DemoPlan {
  durationMs: number;
  partitions: PartitionId[];
  highPps: number;
  lowPps: number;
  phases: DemoPhase[];
}

/**
 * One phase per partition in which it is hot (high rate, the others low), then a last phase
 * where everyone runs at a moderate rate. 60 s and 3 partitions: 15 s each.
 */
export function demoPlan(
  partitions: PartitionId[],
  durationMs: number,
  highPps: number,
  lowPps: number,
): DemoPlan {
  const n = partitions.length + 1;
  const len = durationMs / n;
  const phases: DemoPhase[] = partitions.map((p, i) => ({
    name: `${p} hot`,
    fromMs: Math.round(i * len),
    toMs: Math.round((i + 1) * len),
    hot: p,
  }));
  phases.push({
    name: "all moderate",
    fromMs: Math.round(partitions.length * len),
    toMs: durationMs,
    hot: null,
  });
  return { durationMs, partitions, highPps, lowPps, phases };
}

/** Offered rate of `partition` at `tMs` after the start. */
export function demoRate(plan: DemoPlan, partition: PartitionId, tMs: number): number {
  const ph = plan.phases.find((p) => tMs >= p.fromMs && tMs < p.toMs) ?? plan.phases.at(-1)!;
  if (ph.hot === null) return Math.round((plan.highPps + plan.lowPps) / 4);
  return ph.hot === partition ? plan.highPps : plan.lowPps;
}

/** The plan as step points (tMs, pps) per partition, for trace schedules. */
export function demoTrace(
  plan: DemoPlan,
  partition: PartitionId,
): Array<{ tMs: number; pps: number }> {
  return plan.phases.map((ph) => ({ tMs: ph.fromMs, pps: demoRate(plan, partition, ph.fromMs) }));
}

/** What the summary needs of each cycle: time since the start, each allocation, work conservation. */
export interface AllocationPoint {
  tMs: number;
  cpuMillis: Record<PartitionId, number>;
  /** The host's idle CPU over the cycle, 0..1 (null when not known). */
  hostIdleFraction?: number | null;
  /** Batch partitions' CPU used ÷ capacity (null when not known). */
  batchShare?: number | null;
}

/** Is CPU left idle, and how much of the capacity does batch take? (one cycle) */
export interface WorkConservation {
  /** The host's idle CPU, 0..1, from CycleRecord.host; null when the record has none. */
  hostIdleFraction: number | null;
  /**
   * CPU used by the batch partitions ÷ the record's capacity (managed CPUs − reserve); above 1
   * when batch also runs on the reserve. Null without batch partitions or throughput.
   */
  batchShare: number | null;
}

export function workConservation(
  r: CycleRecord,
  batchIds: ReadonlySet<PartitionId>,
): WorkConservation {
  let batchCpuMillis = 0;
  let seen = 0;
  for (const p of r.partitions) {
    if (!batchIds.has(p.id) || !p.throughput) continue;
    batchCpuMillis += cpuMillisFromCores(p.throughput.cpuCores);
    seen++;
  }
  return {
    hostIdleFraction: r.host ? r.host.idleFraction : null,
    batchShare: seen > 0 && r.capacityCpuMillis > 0 ? batchCpuMillis / r.capacityCpuMillis : null,
  };
}

/** Mean work conservation over several cycles (the live view smooths 100 ms tick noise over ~1 s). */
export function meanWorkConservation(
  records: readonly CycleRecord[],
  batchIds: ReadonlySet<PartitionId>,
): WorkConservation {
  const xs = records.map((r) => workConservation(r, batchIds));
  return {
    hostIdleFraction: meanOf(xs.map((x) => x.hostIdleFraction)),
    batchShare: meanOf(xs.map((x) => x.batchShare)),
  };
}

const meanOf = (xs: ReadonlyArray<number | null | undefined>): number | null => {
  const known = xs.filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x));
  return known.length ? known.reduce((s, x) => s + x, 0) / known.length : null;
};

export function allocationPoint(
  r: CycleRecord,
  startMs: number,
  batchIds: ReadonlySet<PartitionId> = new Set(),
): AllocationPoint {
  const cpuMillis: Record<PartitionId, number> = {};
  for (const p of r.partitions) if (p.directive) cpuMillis[p.id] = p.directive.cpuMillis;
  const wc = workConservation(r, batchIds);
  return {
    tMs: r.startedAtMs - startMs,
    cpuMillis,
    hostIdleFraction: wc.hostIdleFraction,
    batchShare: wc.batchShare,
  };
}

/** Mean host idle fraction and batch share over the points in [fromMs, toMs). */
export function meanWorkConservationOfPoints(
  points: readonly AllocationPoint[],
  fromMs: number,
  toMs: number,
): WorkConservation {
  const xs = points.filter((p) => p.tMs >= fromMs && p.tMs < toMs);
  return {
    hostIdleFraction: meanOf(xs.map((p) => p.hostIdleFraction)),
    batchShare: meanOf(xs.map((p) => p.batchShare)),
  };
}

/**
 * How long weir took to follow a shift: from the phase start until the hot partition's
 * allocation first reached 90 % of the way from where it was at the phase start to where it
 * settled (mean of the phase's last quarter). Null when it did not move by at least 50m
 * (nothing to follow) or never got there.
 */
export function followMs(points: readonly AllocationPoint[], phase: DemoPhase): number | null {
  if (phase.hot === null) return null;
  const id = phase.hot;
  const inPhase = points.filter(
    (p) => p.tMs >= phase.fromMs && p.tMs < phase.toMs && p.cpuMillis[id] !== undefined,
  );
  if (inPhase.length < 4) return null;
  const before = [...points]
    .reverse()
    .find((p) => p.tMs < phase.fromMs && p.cpuMillis[id] !== undefined);
  const start = before?.cpuMillis[id] ?? inPhase[0]!.cpuMillis[id]!;
  const tailFrom = phase.toMs - (phase.toMs - phase.fromMs) / 4;
  const tail = inPhase.filter((p) => p.tMs >= tailFrom);
  if (tail.length === 0) return null;
  const settled = tail.reduce((s, p) => s + p.cpuMillis[id]!, 0) / tail.length;
  if (Math.abs(settled - start) < 50) return null;
  const target = start + 0.9 * (settled - start);
  const up = settled > start;
  const hit = inPhase.find((p) => (up ? p.cpuMillis[id]! >= target : p.cpuMillis[id]! <= target));
  return hit ? Math.max(0, hit.tMs - phase.fromMs) : null;
}

export interface PhasePartitionSummary {
  partition: PartitionId;
  offered: number;
  served: number;
  /** served / offered; null when nothing was offered. */
  servedRatio: number | null;
  p99Ms: number | null;
  meanCpuMillis: number | null;
}

export interface PhaseSummary {
  name: string;
  fromMs: number;
  toMs: number;
  hot: PartitionId | null;
  /** Time for the hot partition's allocation to follow the shift (see followMs). */
  followMs: number | null;
  /** Mean idle CPU of the whole host over the phase, 0..1 (null when it could not be read). */
  hostIdleFraction: number | null;
  /** Mean CPU used by batch partitions ÷ capacity over the phase (null without batch). */
  batchShare: number | null;
  partitions: PhasePartitionSummary[];
}

export interface DemoSummary {
  mode: "real" | "simulated";
  /** Present (true) when the real partitions ran on the host network, counted by eBPF. */
  hostNetwork?: boolean;
  durationMs: number;
  intervalMs: number;
  capacityCpuMillis: number;
  cycles: number;
  meanCycleMs: number;
  phases: PhaseSummary[];
  /** What the load generator itself cost (real mode). */
  loadGenerator?: { cpuCores: number; cpuMicrosPer1000Packets: number | null };
  notes: string[];
}

export function meanAllocation(
  points: readonly AllocationPoint[],
  id: PartitionId,
  fromMs: number,
  toMs: number,
): number | null {
  const xs = points.filter((p) => p.tMs >= fromMs && p.tMs < toMs && p.cpuMillis[id] !== undefined);
  return xs.length ? Math.round(xs.reduce((s, p) => s + p.cpuMillis[id]!, 0) / xs.length) : null;
}

/** What the load saw of one partition in one phase (its mean allocation is added from the points). */
export type PhaseLoad = Omit<PhasePartitionSummary, "meanCpuMillis">;

/**
 * The summary's phases and cycle figures, the same for the real and the simulated demo: per
 * phase the follow time, the work conservation and each partition's load with its mean
 * allocation; `loadOf` says what the load saw of each partition in a phase.
 */
export function summarisePhases(
  plan: DemoPlan,
  points: readonly AllocationPoint[],
  cycleMs: readonly number[],
  loadOf: (phase: DemoPhase) => PhaseLoad[],
): Pick<DemoSummary, "cycles" | "meanCycleMs" | "phases"> {
  return {
    cycles: cycleMs.length,
    meanCycleMs: cycleMs.reduce((s, x) => s + x, 0) / Math.max(1, cycleMs.length),
    phases: plan.phases.map((ph) => ({
      name: ph.name,
      fromMs: ph.fromMs,
      toMs: ph.toMs,
      hot: ph.hot,
      followMs: followMs(points, ph),
      ...meanWorkConservationOfPoints(points, ph.fromMs, ph.toMs),
      partitions: loadOf(ph).map((l) => ({
        ...l,
        meanCpuMillis: meanAllocation(points, l.partition, ph.fromMs, ph.toMs),
      })),
    })),
  };
}

const pct = (f: number | null): string => (f === null ? "n/a" : `${(f * 100).toFixed(1)} %`);

/** "host CPU idle 2.0 % · batch used 61.3 % of capacity" (the work-conservation figures). */
export function formatWorkConservation(wc: WorkConservation): string {
  return `host CPU idle ${pct(wc.hostIdleFraction)} · batch used ${pct(wc.batchShare)} of capacity`;
}

export function formatSummary(s: DemoSummary): string {
  const out: string[] = [];
  out.push(
    `weir demo summary (${s.mode === "real" ? (s.hostNetwork ? "real partitions on the host network: cgroups counted by eBPF" : "real partitions: netns + veth + cgroups on this host") : "SIMULATED partitions"}), ${(s.durationMs / 1000).toFixed(0)} s, ${s.cycles} cycles of ${s.intervalMs} ms (mean ${s.meanCycleMs.toFixed(2)} ms each), capacity ${s.capacityCpuMillis}m`,
  );
  for (const ph of s.phases) {
    out.push("");
    out.push(
      `phase "${ph.name}" (${(ph.fromMs / 1000).toFixed(1)}-${(ph.toMs / 1000).toFixed(1)} s)` +
        (ph.hot
          ? `: shift to ${ph.hot} followed in ${ph.followMs === null ? "n/a" : `${ph.followMs.toFixed(0)} ms`}`
          : ""),
    );
    out.push(`  ${formatWorkConservation(ph)}`);
    out.push(
      `  ${"partition".padEnd(10)} ${"offered".padStart(8)} ${"served".padStart(8)} ${"served/offered".padStart(15)} ${"p99".padStart(9)} ${"mean alloc".padStart(11)}`,
    );
    for (const p of ph.partitions) {
      out.push(
        `  ${p.partition.padEnd(10)} ${String(p.offered).padStart(8)} ${String(p.served).padStart(8)} ${(p.servedRatio === null ? "-" : `${(p.servedRatio * 100).toFixed(1)} %`).padStart(15)} ${(p.p99Ms === null ? "-" : `${p.p99Ms.toFixed(1)} ms`).padStart(9)} ${(p.meanCpuMillis === null ? "-" : `${p.meanCpuMillis}m`).padStart(11)}`,
      );
    }
  }
  if (s.loadGenerator)
    out.push(
      "",
      `load generator cost: ${(s.loadGenerator.cpuCores * 100).toFixed(1)} % of one CPU${s.loadGenerator.cpuMicrosPer1000Packets === null ? "" : ` (${(s.loadGenerator.cpuMicrosPer1000Packets / 1000).toFixed(1)} ms CPU per 1,000 packets)`}`,
    );
  for (const n of s.notes) out.push(`note: ${n}`);
  return `${out.join("\n")}\n`;
}
