// What one run of cycle-pipeline.ts measures and how its runs are summed and summarised: the
// cycle's CPU per phase from each record's timings (taken on a CPU clock) and the CPU of the
// whole `runCycle` call around it, then median [min–max] per build over the repetitions and,
// with two builds or more, each round's difference against the first build. Pure: the
// processes, cgroups and clocks are cycle-pipeline.ts's.
import type { CycleRecord } from "../src/core/model.ts";
import { fmtStats, stats } from "./harness.ts";

/**
 * The cycle's phases, in the order it runs them (manager.ts): sample (the partitions' and the
 * host's counters), reports (agents' reports and the staleness check), step (the policy),
 * apply (the actuators, observing what is in force) and record (the record's columns, the
 * history's push, the readers: the metrics' fold).
 */
export const PHASES = ["sample", "reports", "step", "apply", "record"] as const;
export type Phase = (typeof PHASES)[number];

/** One repetition: a fresh process, its warm-up, then two passes of the same number of cycles. */
export interface PipelineRun {
  build: string;
  round: number;
  cycles: number;
  /** Plain pass (no clock read inside the cycle): process CPU µs a cycle, and wall µs. */
  cpuUsPerCycle: number;
  wallUsPerCycle: number;
  /** Phased pass: process CPU µs a cycle around `runCycle` (its seven clock reads included). */
  phasedCpuUsPerCycle: number;
  /** Phased pass: CPU µs a cycle per phase (they sum to `phasedCpuUsPerCycle`). */
  phaseCpuUs: Record<Phase, number>;
  /** CPU µs of one read of the CPU clock (process.cpuUsage), over many reads. */
  clockReadUs: number;
  /** Partitions whose status was `ok` in the last cycle (all of them, or the run is suspect). */
  partitionsOk: number;
  partitions: number;
  /** With `--reads`: the files a cycle read, by kind (fileKind), over a third pass. */
  reads?: FileReads[];
  /** With `--heap`: what a cycle allocated on the JS heap, over a pass of its own. */
  heap?: HeapAllocations;
}

/** Bytes a cycle allocated on the JS heap (V8's sampling heap profiler), in all and by function. */
export interface HeapAllocations {
  bytesPerCycle: number;
  /** The functions that allocated most, most first (self bytes: what the function's own code allocated). */
  top: Array<{ fn: string; bytesPerCycle: number }>;
}

/** A node of V8's sampling heap profile (HeapProfiler.stopSampling's `profile.head`). */
export interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapProfileNode[];
}

/**
 * A sampling heap profile's self sizes summed per function (name, file and line; node's own
 * modules and V8's pseudo-frames by name), per cycle over `cycles`, the `top` largest kept.
 * With objects the collectors freed included in the sampling, it is what a cycle allocates,
 * not what it keeps.
 */
export function allocationsByFunction(
  head: HeapProfileNode,
  cycles: number,
  top = 15,
): HeapAllocations {
  const byFn = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapProfileNode) => {
    if (n.selfSize > 0) {
      const { functionName, url, lineNumber } = n.callFrame;
      const file = url
        .replace(/^file:\/\//, "")
        .replace(/^.*?\/((?:dist\/)?(?:src|bench|node_modules)\/)/, "$1");
      const fn = `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
      byFn.set(fn, (byFn.get(fn) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  return {
    bytesPerCycle: total / cycles,
    top: [...byFn]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, bytes]) => ({ fn, bytesPerCycle: bytes / cycles })),
  };
}

/** How often a cycle read one kind of file and what a read took (wall time around `fs.readSync`). */
export interface FileReads {
  file: string;
  perCycle: number;
  meanUs: number;
  medianUs: number;
}

/**
 * A file's path with what varies per partition or process made general: `/proc/<pid>/`,
 * the tool's parent `weir-cycle-pipeline-<pid>` and a partition's `pNNN` directory, so every
 * partition's `cpuacct.usage` is one kind.
 */
export function fileKind(file: string): string {
  return file
    .replace(/^\/proc\/\d+\//, "/proc/<pid>/")
    .replace(/weir-cycle-pipeline-\d+/, "weir-cycle-pipeline-<pid>")
    .replace(/\/p\d{3}\//, "/pNNN/");
}

/** Per kind of file: reads a cycle over `cycles`, mean and median µs, most time first. */
export function readsByKind(
  reads: ReadonlyArray<{ file: string; ns: number }>,
  cycles: number,
): FileReads[] {
  const byKind = new Map<string, number[]>();
  for (const r of reads) {
    const k = fileKind(r.file);
    const xs = byKind.get(k);
    if (xs === undefined) byKind.set(k, [r.ns / 1000]);
    else xs.push(r.ns / 1000);
  }
  return [...byKind]
    .map(([file, us]) => {
      const s = stats(us)!;
      return {
        file,
        perCycle: us.length / cycles,
        meanUs: us.reduce((a, b) => a + b, 0) / us.length,
        medianUs: s.median,
      };
    })
    .sort((a, b) => b.perCycle * b.meanUs - a.perCycle * a.meanUs);
}

/** Process CPU time in ms from `process.cpuUsage()` (user + system, µs). */
export const cpuMsOf = (u: { user: number; system: number }): number => (u.user + u.system) / 1000;

/**
 * Sums a pass's phases: per cycle, the record's `timingsMs` (its phase boundaries read on the
 * CPU clock, so each is CPU ms) and the CPU ms of the whole `runCycle` call around it; what
 * the call took beyond the record's `total` is `record` (what runs after the apply phase's end).
 */
export class PhaseTotals {
  private readonly ms: Record<Phase, number> = {
    sample: 0,
    reports: 0,
    step: 0,
    apply: 0,
    record: 0,
  };
  private outerMs = 0;
  private n = 0;

  add(timings: CycleRecord["timingsMs"], outerCpuMs: number): void {
    this.ms.sample += timings.sample;
    this.ms.reports += timings.reports;
    this.ms.step += timings.policy;
    this.ms.apply += timings.apply;
    this.ms.record += outerCpuMs - timings.total;
    this.outerMs += outerCpuMs;
    this.n++;
  }

  get cycles(): number {
    return this.n;
  }

  /** µs a cycle: the whole call and each phase (NaN before any cycle). */
  perCycleUs(): { total: number; phases: Record<Phase, number> } {
    const per = (ms: number) => (ms * 1000) / this.n;
    const phases = {} as Record<Phase, number>;
    for (const p of PHASES) phases[p] = per(this.ms[p]);
    return { total: per(this.outerMs), phases };
  }
}

/** `--build NAME=DIR`: a checkout (built: its dist/) whose Manager a run drives. */
export function parseBuildOption(arg: string): { name: string; dir: string } {
  const eq = arg.indexOf("=");
  if (eq <= 0 || eq === arg.length - 1)
    throw new Error(`cycle-pipeline: --build wants NAME=DIR, got ${JSON.stringify(arg)}`);
  const name = arg.slice(0, eq);
  if (!/^[\w.+-]+$/.test(name))
    throw new Error(
      `cycle-pipeline: a build's name is letters, digits and . + - _, got ${JSON.stringify(name)}`,
    );
  return { name, dir: arg.slice(eq + 1) };
}

/** A positive integer option (`--cycles 6000`), or `fallback` when absent. */
export function positiveIntOption(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1)
    throw new Error(
      `cycle-pipeline: ${name} must be a positive integer, got ${JSON.stringify(v ?? null)}`,
    );
  return Number(v);
}

/** The line a child prints with its run: this prefix, then the run as JSON. */
export const RUN_LINE_PREFIX = "cycle-pipeline run ";

/** The run in a child's stdout (its last run line), or null when it printed none. */
export function runFromOutput(stdout: string): PipelineRun | null {
  const lines = stdout.split("\n").filter((l) => l.startsWith(RUN_LINE_PREFIX));
  const last = lines.at(-1);
  return last === undefined
    ? null
    : (JSON.parse(last.slice(RUN_LINE_PREFIX.length)) as PipelineRun);
}

/**
 * Per build: the plain pass's CPU a cycle (the figure), wall time, and the phased pass's total
 * and phases, each median [min–max] over its runs (µs, one decimal); with more than one build,
 * each later build's difference from the first per round (runs of the same round paired).
 */
export function summarize(runs: readonly PipelineRun[], builds: readonly string[]): string[] {
  const lines = ["CPU µs a cycle (process.cpuUsage), median [min–max] over the runs:"];
  for (const b of builds) {
    const mine = runs.filter((r) => r.build === b);
    const f = (g: (r: PipelineRun) => number) => fmtStats(mine.map(g), 1);
    const ok = mine.map((r) => `${r.partitionsOk}/${r.partitions}`);
    lines.push(
      `${b} (${mine.length} runs, ${mine[0]?.cycles ?? 0} cycles each): ${f((r) => r.cpuUsPerCycle)} (wall ${f((r) => r.wallUsPerCycle)}); partitions ok ${[...new Set(ok)].join(", ")}`,
      `  by phase (a second pass with the CPU clock read at each phase's boundaries): total ${f((r) => r.phasedCpuUsPerCycle)} = ${PHASES.map((p) => `${p} ${f((r) => r.phaseCpuUs[p])}`).join(", ")}; one clock read ${f((r) => r.clockReadUs)} (7 a cycle)`,
    );
  }
  for (const b of builds) {
    const r = runs.find((x) => x.build === b && x.reads !== undefined);
    if (!r?.reads) continue;
    const perCycleUs = r.reads.reduce((a, f) => a + f.perCycle * f.meanUs, 0);
    lines.push(
      `${b}: files read (round ${r.round}, a third pass, wall time around each fs.readSync): ${r.reads.reduce((a, f) => a + f.perCycle, 0).toFixed(1)} reads a cycle, ${perCycleUs.toFixed(1)} µs a cycle`,
      ...r.reads.map(
        (f) =>
          `  ${f.perCycle.toFixed(2)} a cycle, ${f.meanUs.toFixed(2)} µs mean (median ${f.medianUs.toFixed(2)}): ${f.file}`,
      ),
    );
  }
  for (const b of builds) {
    const r = runs.find((x) => x.build === b && x.heap !== undefined);
    if (!r?.heap) continue;
    lines.push(
      `${b}: JS heap allocated a cycle (round ${r.round}, a pass under V8's sampling heap profiler, objects the collectors freed included): ${(r.heap.bytesPerCycle / 1024).toFixed(1)} KiB; by function (self):`,
      ...r.heap.top.map(
        (t) =>
          `  ${(t.bytesPerCycle / 1024).toFixed(2).padStart(7)} KiB ${((t.bytesPerCycle / r.heap!.bytesPerCycle) * 100).toFixed(1).padStart(5)} %  ${t.fn}`,
      ),
    );
  }
  const [first, ...rest] = builds;
  for (const b of rest) {
    const diffs: number[] = [];
    for (const r of runs) {
      if (r.build !== b) continue;
      const base = runs.find((x) => x.build === first && x.round === r.round);
      if (base) diffs.push(r.cpuUsPerCycle - base.cpuUsPerCycle);
    }
    const s = stats(diffs);
    if (!s) continue;
    lines.push(
      `${b} − ${first} per round: ${diffs.map((d) => `${d >= 0 ? "+" : ""}${d.toFixed(1)}`).join(", ")} µs (median ${s.median >= 0 ? "+" : ""}${s.median.toFixed(1)}; lower in ${diffs.filter((d) => d < 0).length} of ${diffs.length})`,
    );
  }
  return lines;
}
