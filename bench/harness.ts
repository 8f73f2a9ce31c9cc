// Shared shape and runner for benchmark programs.
import os from "node:os";

export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  /** The budget from ARCHITECTURE.md, if any, e.g. "<= 1 ms". */
  target?: string;
  /** Whether the figure meets the target (undefined when there is none). */
  meets?: boolean;
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
  const partial = await bench.run(ctx);
  const result: BenchResult = {
    ...partial,
    command: `npx tsx bench/${bench.name}.ts${quick ? " --quick" : ""}${reps !== undefined ? ` --reps ${reps}` : ""}`,
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
  };
  if (!json && process.stderr.isTTY) process.stderr.write("\n");
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    process.stdout.write(`${result.name} — ${result.machine} — ${result.date}\n`);
    for (const f of result.figures) {
      const mark = f.meets === undefined ? "" : f.meets ? "  ok" : "  MISSES";
      process.stdout.write(
        `  ${f.name}: ${f.value} ${f.unit}${f.target ? ` (target ${f.target})` : ""}${mark}\n`,
      );
    }
    for (const n of result.notes ?? []) process.stdout.write(`  note: ${n}\n`);
  }
  return result;
}

/** True when this module is the process's entry point. */
export const isMain = (metaUrl: string): boolean =>
  process.argv[1] !== undefined && metaUrl === new URL(`file://${process.argv[1]}`).href;
