// Shared shape and runner for benchmark programs.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ErrorCodes, WeirError } from "../src/core/errors.ts";
import { defaultRoots } from "../src/sensors/types.ts";

export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  /** The budget (bench/README.md), if any, e.g. "<= 1 ms". */
  target?: string;
  /** Whether the figure meets the target (undefined when there is none), judged on the median. */
  meets?: boolean;
  /** From the simulator: indicative, never a verdict on a budget (the report says so). */
  simulated?: boolean;
  /** Repetitions behind `value` (their median) and their range. */
  reps?: number;
  range?: [min: number, max: number];
}

export interface BenchResult {
  name: string;
  command: string;
  machine: string;
  date: string;
  figures: BenchFigure[];
  /** Optional tables (e.g. per-policy rows) for the report generator. */
  tables?: Array<{ title: string; columns: string[]; rows: Array<Array<string | number>> }>;
  notes?: string[];
  /** The host's 1-minute load average when the benchmark started and ended (time figures depend on it). */
  loadAverage?: [start: number, end: number];
}

export interface BenchContext {
  /** Report progress 0..1 with a short label (drives the progress bar). */
  progress(fraction: number, label?: string): void;
  /** Smaller, faster run (CI smoke). */
  quick: boolean;
  /** Repetitions, for benchmarks that repeat their runs (`--reps N`); unset: the benchmark's default. */
  reps?: number;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Omit<BenchResult, "machine" | "date" | "command">>;
}

export function machineDescription(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
}

/** High-resolution time in nanoseconds as a number. */
export const nowNs = (): number => Number(process.hrtime.bigint());

/** Run `fn` repeatedly for at least `minMs` (and `minIters`), return ns per iteration (median of 5 batches). */
export function timePerIterationNs(
  fn: () => void,
  opts: { minMs?: number; minIters?: number } = {},
): number {
  const minMs = opts.minMs ?? 200;
  const minIters = opts.minIters ?? 10;
  for (let i = 0; i < Math.max(3, minIters / 10); i++) fn(); // warm up
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    let iters = 0;
    const start = nowNs();
    let elapsed = 0;
    while (iters < minIters || elapsed < (minMs / 5) * 1e6) {
      fn();
      iters++;
      elapsed = nowNs() - start;
    }
    batches.push(elapsed / iters);
  }
  batches.sort((a, b) => a - b);
  return batches[2]!;
}

// ---- repetitions: median and range -------------------------------------------------------

/** Median and range of finite values; null when there are none. */
export function stats(
  xs: number[],
): { median: number; min: number; max: number; n: number } | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** The q-quantile (0..1) of an ascending array, nearest rank below. */
export const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** "median [min–max]" with `digits` decimals; "–" when nothing was measured. */
export function fmtStats(xs: number[], digits = 1, scale = 1): string {
  const s = stats(xs.map((x) => x * scale));
  if (!s) return "–";
  const f = (x: number) => x.toFixed(digits);
  return s.min === s.max
    ? `${f(s.median)} [${f(s.min)}]`
    : `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
}

/**
 * A figure's median, range and repetition count from per-repetition values (scaled, rounded to
 * `digits`): spread into a BenchFigure so the report prints "median [min–max], N reps".
 */
export function repeated(
  xs: number[],
  digits = 1,
  scale = 1,
): Pick<BenchFigure, "value" | "reps" | "range"> {
  const s = stats(xs.map((x) => x * scale));
  if (!s) return { value: Number.NaN };
  const r = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return { value: r(s.median), reps: s.n, range: [r(s.min), r(s.max)] };
}

/** `--reps N` from argv (a positive integer), undefined when absent; a clear error otherwise. */
export function parseRepsOption(argv: string[]): number | undefined {
  const i = argv.indexOf("--reps");
  if (i < 0) return undefined;
  const v = argv[i + 1];
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || n < 1)
    throw new Error(`--reps: must be a positive integer, got ${JSON.stringify(v ?? null)}`);
  return n;
}

/**
 * `FLAG a,b` from argv where each name must be one of `choices`: the names given, in their
 * order; undefined when the flag is absent; a clear error naming the choices and the names
 * that are not among them otherwise (or the whole value, when it names nothing).
 */
export function parseChoiceListOption<T extends string>(
  argv: readonly string[],
  flag: string,
  choices: readonly T[],
): T[] | undefined {
  const i = argv.indexOf(flag);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  const names = (v ?? "").split(",").filter((x) => x !== "");
  const bad = names.filter((x) => !(choices as readonly string[]).includes(x));
  if (names.length === 0 || bad.length > 0)
    throw new Error(
      `${flag}: a comma-separated list of ${choices.join(", ")}; got ${JSON.stringify(bad.length > 0 ? bad.join(",") : (v ?? null))}`,
    );
  return names as T[];
}

/**
 * The start of a real-testbed benchmark: it needs root (namespaces, veths, cgroups), and its
 * repetitions are `--reps` (1..50), else 1 with --quick, else 5.
 */
export function realBenchReps(name: string, ctx: BenchContext): number {
  if (process.getuid?.() !== 0)
    throw new WeirError(
      ErrorCodes.NOT_ROOT,
      `bench ${name}: needs root (namespaces, veths, cgroups)`,
    );
  const reps = ctx.reps ?? (ctx.quick ? 1 : 5);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `bench ${name}: --reps must be an integer in 1..50, got ${reps}`,
    );
  return reps;
}

/** Standalone entry: `npx tsx bench/<name>.ts [--json] [--quick]`. */
export async function runStandalone(
  bench: Benchmark,
  argv = process.argv.slice(2),
): Promise<BenchResult> {
  const json = argv.includes("--json");
  const quick = argv.includes("--quick");
  const reps = parseRepsOption(argv);
  const ctx: BenchContext = {
    quick,
    ...(reps !== undefined ? { reps } : {}),
    progress: (f, label) => {
      if (!json && process.stderr.isTTY)
        process.stderr.write(`\r${bench.name} ${(f * 100).toFixed(0)}% ${label ?? ""}   `);
    },
  };
  const load0 = os.loadavg()[0]!;
  const partial = await bench.run(ctx);
  const result: BenchResult = {
    loadAverage: [load0, os.loadavg()[0]!],
    ...partial,
    command: `npx tsx bench/${bench.name}.ts${quick ? " --quick" : ""}${reps !== undefined ? ` --reps ${reps}` : ""}`,
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
  };
  if (!json && process.stderr.isTTY) process.stderr.write("\n");
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(`${result.name} — ${result.machine} — ${result.date}\n`);
    for (const f of result.figures) process.stdout.write(`  ${figureLine(f)}\n`);
    for (const t of result.tables ?? []) {
      process.stdout.write(`  ${t.title}\n    ${t.columns.join(" | ")}\n`);
      for (const r of t.rows) process.stdout.write(`    ${r.join(" | ")}\n`);
    }
    for (const n of result.notes ?? []) process.stdout.write(`  note: ${n}\n`);
  }
  return result;
}

/**
 * One figure as a line: "name: value unit [min–max] over N (target …)  ok|MISSES"; a simulated
 * figure is marked "sim: would meet|would miss", never "ok".
 */
export function figureLine(f: BenchFigure): string {
  const range = !f.range
    ? ""
    : f.range[0] === f.range[1]
      ? ` [${f.range[0]}]`
      : ` [${f.range[0]}–${f.range[1]}]`;
  const reps = f.reps ? ` (median of ${f.reps})` : "";
  const mark =
    f.meets === undefined
      ? ""
      : f.simulated
        ? f.meets
          ? "  sim: would meet"
          : "  sim: would miss"
        : f.meets
          ? "  ok"
          : "  MISSES";
  return `${f.name}: ${f.value} ${f.unit}${range}${reps}${f.target ? ` (target ${f.target})` : ""}${mark}`;
}

/** True when this module is the process's entry point. */
export const isMain = (metaUrl: string): boolean =>
  process.argv[1] !== undefined && metaUrl === new URL(`file://${process.argv[1]}`).href;

// ---- host plumbing shared by the real-testbed benchmarks ------------------------------------

/**
 * Moves this process (manager and load generator of a real-testbed benchmark) into its own v1
 * cpu cgroup with `shares` against the rest of the host, so other work on a shared machine does
 * not starve the generator; returns the undo (moves it back, removes the group).
 */
export function isolateSelf(name: string, shares: number): () => void {
  const cpuRoot = path.join(defaultRoots.cgroupfs, "cpu");
  const line = fs
    .readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((l) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(l));
  if (!line || !fs.existsSync(path.join(cpuRoot, "cgroup.procs"))) return () => {};
  const original = path.join(cpuRoot, line.slice(line.lastIndexOf(":") + 1));
  const dir = path.join(cpuRoot, name);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, "cpu.shares"), String(shares));
    fs.writeFileSync(path.join(dir, "cgroup.procs"), String(process.pid));
  } catch (err) {
    fs.rmdirSync(dir);
    throw err;
  }
  return () => {
    fs.writeFileSync(path.join(original, "cgroup.procs"), String(process.pid));
    fs.rmdirSync(dir);
  };
}

/** CPU a cgroup used so far, ns: v1 cpuacct.usage or v2 cpu.stat usage_usec (first dir that has one). */
export const readUsageNs = (dirs: string[]): number => {
  for (const d of dirs) {
    const f = path.join(d, "cpuacct.usage");
    if (fs.existsSync(f)) return Number(fs.readFileSync(f, "utf8").trim());
    const stat = path.join(d, "cpu.stat");
    const m = fs.existsSync(stat) ? /usage_usec (\d+)/.exec(fs.readFileSync(stat, "utf8")) : null;
    if (m) return Number(m[1]) * 1000;
  }
  return Number.NaN;
};
