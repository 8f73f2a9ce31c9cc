// Running benchmarks for the report and the CLI: find every bench/*.ts that exports `bench`,
// run one, fill in its command, machine, date and load, and print it as text.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MODULE_EXT, PACKAGE_ROOT_URL } from "../src/core/package-files.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  figureLine,
  machineDescription,
} from "./harness.ts";

/** Where the benchmark modules that run are: bench/ (sources) or dist/bench/ (compiled). */
export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
export const REPO_ROOT = fileURLToPath(PACKAGE_ROOT_URL);
/** Files in bench/ that are not benchmarks: the harness and the report's modules. */
const notBench = (f: string) => f.startsWith("harness.") || f.startsWith("report");

export interface FoundBench {
  file: string;
  bench: Benchmark;
}

const isBenchmark = (x: unknown): x is Benchmark =>
  typeof x === "object" &&
  x !== null &&
  typeof (x as Benchmark).name === "string" &&
  typeof (x as Benchmark).run === "function";

/**
 * Every bench/*.ts (dist/bench/*.js when compiled; not tests, not the harness or this file)
 * whose module exports `bench`, by name.
 */
export async function discoverBenches(dir = BENCH_DIR): Promise<FoundBench[]> {
  const files = fs
    .readdirSync(dir)
    .filter(
      (f) =>
        f.endsWith(MODULE_EXT) &&
        !f.endsWith(`.test${MODULE_EXT}`) &&
        !f.startsWith(".") &&
        !notBench(f),
    )
    .sort();
  const found: FoundBench[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as { bench?: unknown };
    if (isBenchmark(mod.bench)) found.push({ file, bench: mod.bench });
  }
  return found.sort((a, b) => a.bench.name.localeCompare(b.bench.name));
}

export const commandFor = (name: string, quick: boolean, reps?: number): string =>
  `weir bench ${name}${quick ? " --quick" : ""}${reps !== undefined ? ` --reps ${reps}` : ""}`;

export function complete(
  partial: Omit<BenchResult, "machine" | "date" | "command">,
  quick: boolean,
  reps: number | undefined,
  loadAtStart: number,
): BenchResult {
  return {
    loadAverage: [loadAtStart, os.loadavg()[0]!],
    ...partial,
    command: commandFor(partial.name, quick, reps),
    machine: machineDescription(),
    date: new Date().toISOString().slice(0, 10),
  };
}

/** Run one benchmark and fill in the command, machine and date. */
export async function runBench(
  bench: Benchmark,
  opts: { quick: boolean; reps?: number; progress?: BenchContext["progress"] },
): Promise<BenchResult> {
  const load0 = os.loadavg()[0]!;
  const partial = await bench.run({
    quick: opts.quick,
    progress: opts.progress ?? (() => {}),
    ...(opts.reps !== undefined ? { reps: opts.reps } : {}),
  });
  return complete(partial, opts.quick, opts.reps, load0);
}

const pad = (s: string, n: number) => s + " ".repeat(Math.max(0, n - s.length));

/** A result as plain text for the terminal. */
export function formatText(r: BenchResult): string {
  const lines = [`${r.name} — ${r.machine} — ${r.date}`];
  for (const f of r.figures) lines.push(`  ${figureLine(f)}`);
  for (const t of r.tables ?? []) {
    lines.push("", `  ${t.title}`);
    const cells = [t.columns, ...t.rows.map((row) => row.map(String))];
    const widths = t.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
    for (const row of cells) lines.push(`  ${row.map((c, i) => pad(c, widths[i]!)).join("  ")}`);
  }
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  return `${lines.join("\n")}\n`;
}
