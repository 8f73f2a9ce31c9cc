// `weir bench <name> [--json] [--quick]`, `weir bench --list`, `weir bench report`:
// runs any bench/<name>.ts that exports `bench` (see bench/harness.ts), with a progress bar.
import type { Command } from "commander";

interface BenchOptions {
  json?: boolean;
  quick?: boolean;
  list?: boolean;
  only?: string;
  skip?: string;
  out?: string;
  plots?: boolean;
  plotsOnly?: boolean;
  reps?: string;
  merge?: boolean;
}

/** A progress bar on stderr (drawn only on a terminal), fed with 0..1 fractions. */
async function progressBar(): Promise<{
  update: (fraction: number, label?: string) => void;
  stop: () => void;
}> {
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    {
      format: " {bar} {percentage}% | {label}",
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(fraction, label) {
      const value = Math.round(Math.min(1, Math.max(0, fraction)) * 1000);
      if (!started) {
        bar.start(1000, value, { label: label ?? "" });
        started = true;
      } else bar.update(value, { label: label ?? "" });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

export function register(program: Command): void {
  program
    .command("bench")
    .argument("[name]", "benchmark to run (bench/<name>.ts), or `report` to write BENCHMARKS.md")
    .description(
      "Run a benchmark and print its figures against the budgets; `weir bench report` runs them all.",
    )
    .addHelpText(
      "after",
      [
        "",
        "Benchmarks measure; tests never assert speed. Each prints its figures with the budget",
        "from bench/README.md where there is one. `weir bench scenarios` runs weir and every",
        "baseline (plain CFS, static caps, static weights, VPA-style, Koordinator-style) and the",
        "clairvoyant bound on the same simulated load, on several seeds, through weir's real manager",
        "cycle. `weir bench report` runs every benchmark and writes BENCHMARKS.md with tables and",
        "PNG plots (docs/bench/).",
      ].join("\n"),
    )
    .option("--json", "print the result as JSON")
    .option("--quick", "shorter runs (CI smoke)")
    .option("--list", "list the benchmarks")
    .option("--only <names>", "report: only these benchmarks (comma-separated)")
    .option("--skip <names>", "report: skip these benchmarks (comma-separated)")
    .option("--out <file>", "report: output file (default: BENCHMARKS.md at the repo root)")
    .option("--no-plots", "report: skip the PNG plots (needs /usr/bin/chromium)")
    .option(
      "--plots-only",
      "report: run nothing; redraw the real-testbed plots from the existing file's tables",
    )
    .option(
      "--reps <n>",
      "repetitions (seeds for the simulated ones), for benchmarks that repeat their runs",
    )
    .option(
      "--merge",
      "report: keep the sections of benchmarks not run this time from the existing file",
    )
    .action(async (name: string | undefined, opts: BenchOptions, cmd: Command) => {
      const report = await import("../../../bench/report.ts");
      const runner = await import("../../../bench/report-run.ts");
      const found = await runner.discoverBenches();
      if (opts.list || !name) {
        if (opts.json)
          process.stdout.write(
            `${JSON.stringify(
              found.map((f) => ({
                name: f.bench.name,
                description: f.bench.description,
                file: `bench/${f.file}`,
              })),
              null,
              2,
            )}\n`,
          );
        else {
          const w = Math.max(6, ...found.map((f) => f.bench.name.length));
          for (const f of found)
            process.stdout.write(`${f.bench.name.padEnd(w)}  ${f.bench.description}\n`);
          process.stdout.write(
            `${"report".padEnd(w)}  run them all and write BENCHMARKS.md with plots\n`,
          );
        }
        return;
      }
      const reps = opts.reps === undefined ? undefined : Number(opts.reps);
      if (reps !== undefined && !(Number.isInteger(reps) && reps >= 1)) {
        cmd.error(`weir bench: --reps must be a positive integer, got "${opts.reps}"`, {
          exitCode: 2,
        });
        return;
      }
      const bar = await progressBar();
      try {
        if (name === "report") {
          const outcome = await report.generateReport({
            quick: opts.quick ?? false,
            only: report.parseListOption(opts.only),
            skip: report.parseListOption(opts.skip),
            out: opts.out,
            noPlots: opts.plots === false,
            plotsOnly: opts.plotsOnly ?? false,
            merge: opts.merge ?? false,
            ...(reps !== undefined ? { reps } : {}),
            progress: bar.update,
          });
          bar.stop();
          const summary = {
            path: outcome.path,
            benchmarks: outcome.results.map((r) => r.name),
            plots: outcome.plots,
            notRun: outcome.failures,
          };
          if (opts.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          else {
            process.stdout.write(
              `wrote ${outcome.path}: ${summary.benchmarks.join(", ")}; ${outcome.plots.length} plots\n`,
            );
            for (const f of outcome.failures)
              process.stdout.write(`not run: ${f.name}: ${f.error.split("\n")[0]}\n`);
          }
          return;
        }
        const hit = found.find((f) => f.bench.name === name);
        if (!hit) {
          bar.stop();
          cmd.error(
            `weir bench: no benchmark named "${name}" (known: ${found.map((f) => f.bench.name).join(", ")}, report)`,
            { exitCode: 2 },
          );
          return;
        }
        const result = await runner.runBench(hit.bench, {
          quick: opts.quick ?? false,
          ...(reps !== undefined ? { reps } : {}),
          progress: bar.update,
        });
        bar.stop();
        process.stdout.write(
          opts.json ? `${JSON.stringify(result, null, 2)}\n` : runner.formatText(result),
        );
      } finally {
        bar.stop();
      }
    });
}
