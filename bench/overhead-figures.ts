// What one overhead run measures (OverheadRun), read from outside the process (/proc/<pid>/stat
// and status, the Prometheus text of its /metrics), and the figures per runtime: medians as
// values, ranges in the names, budgets on the compiled runtime. overhead.ts runs the benchmark.
import type { BenchFigure } from "./harness.ts";
import { repeated, stats } from "./harness.ts";

/** Partitions `weir run` manages in each run. */
export const PARTITIONS = 100;
/** Its cycle interval. */
export const INTERVAL_MS = 100;

/**
 * How the bin runs weir — compiled: the bin running dist/; tsx: the sources through tsx; agents: compiled, the
 * partitions fed by their agents over UDP (overhead.ts).
 */
export type Runtime = "compiled" | "tsx" | "agents";
export const RUNTIMES: readonly Runtime[] = ["compiled", "tsx", "agents"];

export interface OverheadRun {
  runtime: Runtime;
  /** Spawn to the first answer of its HTTP API. */
  startupMs: number;
  measuredSeconds: number;
  cpuSeconds: number;
  /** CPU time ÷ wall time over the measured window (0.01 = 1 % of one core). */
  cpuShareOfOneCore: number;
  rssMb: number;
  peakRssMb: number;
  cycles: number;
  cycleMsMean: number;
  /** Reports the transports accepted a cycle (0 without agents). */
  reportsPerCycle: number;
}

/** utime + stime in clock ticks, from the text of /proc/<pid>/stat (fields 14 and 15). */
export function parseProcCpuTicks(stat: string): number {
  const { userTicks, systemTicks } = parseProcCpuSplit(stat);
  return userTicks + systemTicks;
}

/**
 * utime and stime apart, in clock ticks, and the minor page faults (minflt), from the text of
 * /proc/<pid>/stat (or a task's).
 */
export function parseProcCpuSplit(stat: string): {
  userTicks: number;
  systemTicks: number;
  minorFaults: number;
} {
  // The command name (field 2) may contain spaces; fields after it follow the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return {
    userTicks: Number(rest[14 - 3]),
    systemTicks: Number(rest[15 - 3]),
    minorFaults: Number(rest[10 - 3]),
  };
}

/** One collection from a `node --trace-gc` line, or null for any other line. */
export interface TraceGcEvent {
  /** Milliseconds since the isolate started. */
  atMs: number;
  kind: "scavenge" | "mark-compact" | "minor-mark-compact";
  /** The pause on the main thread, ms (the first figure after "MB,"). */
  pauseMs: number;
}

const TRACE_GC =
  /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: (Scavenge|Minor Mark-Compact|Mark-Compact)\b.*? MB, ([\d.]+) \//;

export function parseTraceGcLine(line: string): TraceGcEvent | null {
  const m = TRACE_GC.exec(line);
  if (!m) return null;
  const kind =
    m[2] === "Scavenge"
      ? "scavenge"
      : m[2] === "Mark-Compact"
        ? "mark-compact"
        : "minor-mark-compact";
  return { atMs: Number(m[1]), kind, pauseMs: Number(m[3]) };
}

/** One TurboFan compilation finished, from a `node --trace-opt` line, or null for any other. */
export interface TraceOptEvent {
  /** The function's name as V8 prints it ("" for an anonymous one). */
  name: string;
  /** The compile's three phases summed, ms (the middle one runs on a helper thread). */
  compileMs: number;
  /** The middle phase alone, ms: the part a concurrent compile does off the main thread. */
  concurrentMs: number;
}

const TRACE_OPT =
  /^\[completed compiling 0x[0-9a-f]+ <JSFunction ?(\S*) \(sfi = [^)]*\)> \(target \w+\)(?: OSR)? - took ([\d.]+), ([\d.]+), ([\d.]+) ms\]/;

export function parseTraceOptLine(line: string): TraceOptEvent | null {
  const m = TRACE_OPT.exec(line);
  if (!m) return null;
  const [a, b, c] = [Number(m[2]), Number(m[3]), Number(m[4])];
  return { name: m[1]!, compileMs: a + b + c, concurrentMs: b };
}

/** One deoptimisation, from a `node --trace-deopt` line, or null for any other line. */
export interface TraceDeoptEvent {
  name: string;
  /** "deopt-eager: wrong map", say. */
  reason: string;
}

const TRACE_DEOPT =
  /^\[bailout \(kind: ([\w-]+), reason: ([^)]*)\): begin\. deoptimizing 0x[0-9a-f]+ <JSFunction ?(\S*) \(sfi/;

export function parseTraceDeoptLine(line: string): TraceDeoptEvent | null {
  const m = TRACE_DEOPT.exec(line);
  return m ? { name: m[3]!, reason: `${m[1]}: ${m[2]}` } : null;
}

/** VmRSS and VmHWM (peak) in MB, from the text of /proc/<pid>/status. */
export function parseProcMemoryMb(status: string): { rssMb: number; peakRssMb: number } {
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
}

/** The value of a metric's first sample in Prometheus text, with or without labels (NaN where absent). */
function sampleValue(metricsText: string, metric: string): number {
  return Number(
    new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(metricsText)?.[1] ?? Number.NaN,
  );
}

/** A histogram's `_sum` and `_count` from Prometheus text (NaN where absent). */
export function parseHistogramTotals(
  metricsText: string,
  name: string,
): { sum: number; count: number } {
  return {
    sum: sampleValue(metricsText, `${name}_sum`),
    count: sampleValue(metricsText, `${name}_count`),
  };
}

/**
 * From weir's /metrics: the cycles run and their time in all (the cycle histogram's count and
 * sum, s), and the reports its transports accepted (0 where it has none).
 */
export function parseRunCounts(metricsText: string): {
  cycles: number;
  cycleSeconds: number;
  reports: number;
} {
  const { sum, count } = parseHistogramTotals(metricsText, "weir_cycle_duration_seconds");
  const reports = sampleValue(metricsText, "weir_reports_accepted_total");
  return { cycles: count, cycleSeconds: sum, reports: Number.isNaN(reports) ? 0 : reports };
}

export const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The figures for one runtime: medians as values, with the repetitions' range and count. */
export function runtimeFigures(runtime: Runtime, runs: readonly OverheadRun[]): BenchFigure[] {
  const mine = runs.filter((r) => r.runtime === runtime);
  const of = (f: (r: OverheadRun) => number) => stats(mine.map(f));
  const label =
    runtime === "compiled"
      ? "weir run, compiled (bin/weir.js → dist/)"
      : runtime === "tsx"
        ? "weir run, sources through tsx (WEIR_FROM_SOURCE=1)"
        : `weir run, compiled, fed by ${PARTITIONS} agents over UDP`;
  const rep = (f: (r: OverheadRun) => number, digits: number, scale = 1) =>
    repeated(mine.map(f), digits, scale);
  const cpu = of((r) => r.cpuShareOfOneCore);
  const rss = of((r) => r.rssMb);
  const budgets = runtime === "compiled";
  return [
    {
      name: `${label}: CPU, ${PARTITIONS} partitions at ${1000 / INTERVAL_MS} cycles/s`,
      ...rep((r) => r.cpuShareOfOneCore, 2, 100),
      unit: "% of one core",
      ...(budgets ? { target: "<= 1 %", meets: !!cpu && cpu.median <= 0.01 } : {}),
    },
    {
      name: `${label}: resident memory, VmRSS at the end`,
      ...rep((r) => r.rssMb, 1),
      unit: "MB",
      ...(budgets ? { target: "<= 80 MB", meets: !!rss && rss.median <= 80 } : {}),
    },
    { name: `${label}: peak resident memory, VmHWM`, ...rep((r) => r.peakRssMb, 1), unit: "MB" },
    {
      name: `${label}: cycle time (sample + step + apply), mean per run`,
      ...rep((r) => r.cycleMsMean, 3),
      unit: "ms",
    },
    { name: `${label}: start to first API answer`, ...rep((r) => r.startupMs, 0), unit: "ms" },
  ];
}

/**
 * The environment and node flags a bin's first line gives (`#!/usr/bin/env -S VAR=value node
 * --flag ...`: env sets the variables, then runs node with the flags), so a run that must start
 * node itself (the profiled one: `--cpu-prof` is not allowed in NODE_OPTIONS) starts it as the
 * bin would. Both empty for a plain `#!/usr/bin/env node`.
 */
export function shebangCommand(binText: string): {
  env: Record<string, string>;
  nodeFlags: string[];
} {
  const first = binText.slice(0, binText.indexOf("\n") >>> 0);
  const m = /^#!\S*env(?: -S)?((?: +[A-Za-z_][A-Za-z0-9_]*=\S*)*) +node((?: +\S+)*) *$/.exec(first);
  if (!m) throw new Error(`not a node bin's first line: ${JSON.stringify(first)}`);
  const words = (x: string) => (x.trim() === "" ? [] : x.trim().split(/ +/));
  const env: Record<string, string> = {};
  for (const w of words(m[1]!)) {
    const eq = w.indexOf("=");
    env[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { env, nodeFlags: words(m[2]!) };
}

/** The node flags alone of a bin's first line (shebangCommand). */
export const shebangNodeFlags = (binText: string): string[] => shebangCommand(binText).nodeFlags;
