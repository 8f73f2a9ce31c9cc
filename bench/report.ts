// The report generator: runs every benchmark (report-run.ts), keeps the simulated suites'
// repetitions for the loss analysis (report-losses.ts) and the plots (report-plots.ts), and
// writes BENCHMARKS.md (report-markdown.ts).
// Run: weir bench report [--quick] [--only a,b] [--skip a,b] [--out FILE] [--reps N] [--merge] [--no-plots]
//      weir bench report --plots-only [--out FILE]   (redraw the real-testbed plots, run nothing)
//  or: npx tsx bench/report.ts [same options]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { policyFactories } from "../src/sim/policies.ts";
import { smallScenarios } from "../src/sim/scenarios.ts";
import { type BenchResult, isMain, parseRepsOption } from "./harness.ts";
import { renderMarkdown } from "./report-markdown.ts";
import { renderPlots } from "./report-plots.ts";
import { renderRealPlots, withPlotReferences } from "./report-real-plots.ts";
import { complete, discoverBenches, REPO_ROOT, runBench } from "./report-run.ts";
import { DEFAULT_SIM_REPS, runSuite, type SuiteResult, summarise } from "./scenarios.ts";
import { scalePolicies, scaleScenarios, summariseScale } from "./scenarios-scale.ts";

export interface ReportOptions {
  quick: boolean;
  /** Run only these benchmarks (names). */
  only?: string[];
  skip?: string[];
  /** Output file (default BENCHMARKS.md at the repo root). */
  out?: string;
  /** Where PNGs go (default docs/bench/ at the repo root). */
  plotsDir?: string;
  /** Skip the PNGs (no Chromium). */
  noPlots?: boolean;
  /**
   * Run nothing: redraw the real-testbed plots from the existing output file's tables and
   * reference each below its table (after sections were merged by hand, or re-run with --no-plots).
   */
  plotsOnly?: boolean;
  /** Repetitions for benchmarks that repeat their runs (BenchContext.reps). */
  reps?: number;
  /**
   * Keep, from the existing output file, the sections (and budget rows, and the simulated
   * "where weir loses" section) of benchmarks not run this time, so one benchmark can be
   * re-run without re-running all of them.
   */
  merge?: boolean;
  progress?: (fraction: number, label?: string) => void;
  log?: (line: string) => void;
}

export interface ReportOutcome {
  path: string;
  results: BenchResult[];
  failures: Array<{ name: string; error: string }>;
  plots: string[];
}

export async function generateReport(opts: ReportOptions): Promise<ReportOutcome> {
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? (() => {});
  const outPath = opts.out ?? path.join(REPO_ROOT, "BENCHMARKS.md");
  const plotsDir = opts.plotsDir ?? path.join(REPO_ROOT, "docs", "bench");
  const relDir = path.relative(path.dirname(outPath), plotsDir).split(path.sep).join("/");
  if (opts.plotsOnly) {
    const md = fs.readFileSync(outPath, "utf8");
    const drawn = await renderRealPlots(md, plotsDir);
    fs.writeFileSync(
      outPath,
      withPlotReferences(md, new Set(drawn.map((f) => path.basename(f))), relDir),
    );
    return { path: outPath, results: [], failures: [], plots: drawn };
  }
  const found = (await discoverBenches()).filter(
    (f) => (!opts.only || opts.only.includes(f.bench.name)) && !opts.skip?.includes(f.bench.name),
  );
  const results: BenchResult[] = [];
  const failures: ReportOutcome["failures"] = [];
  let suite: SuiteResult | null = null;
  let scaleSuite: SuiteResult | null = null;
  for (let i = 0; i < found.length; i++) {
    const { bench } = found[i]!;
    const sub = (f: number, label?: string) =>
      progress((i + f) / found.length, label ?? bench.name);
    log(`running ${bench.name}`);
    try {
      const load0 = os.loadavg()[0]!;
      const simReps = opts.reps ?? (opts.quick ? 2 : DEFAULT_SIM_REPS);
      if (bench.name === "scenarios") {
        // Run the suite here (not through bench.run) to keep its time series for the plots.
        suite = runSuite(smallScenarios(opts.quick), sub, policyFactories, simReps);
        results.push(
          complete({ name: "scenarios", ...summarise(suite) }, opts.quick, opts.reps, load0),
        );
      } else if (bench.name === "scenarios-scale") {
        scaleSuite = runSuite(scaleScenarios(opts.quick), sub, scalePolicies, simReps);
        results.push(
          complete(
            { name: "scenarios-scale", ...summariseScale(scaleSuite) },
            opts.quick,
            opts.reps,
            load0,
          ),
        );
      } else
        results.push(
          await runBench(bench, {
            quick: opts.quick,
            progress: sub,
            ...(opts.reps !== undefined ? { reps: opts.reps } : {}),
          }),
        );
    } catch (err) {
      failures.push({ name: bench.name, error: err instanceof Error ? err.message : String(err) });
      log(`${bench.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    progress((i + 1) / found.length, bench.name);
  }
  let plots: string[] = [];
  if (suite && !opts.noPlots) {
    log("rendering plots");
    try {
      plots = await renderPlots(suite, plotsDir);
    } catch (err) {
      failures.push({ name: "plots", error: err instanceof Error ? err.message : String(err) });
    }
  }
  let md = renderMarkdown({
    results,
    failures,
    suite,
    scaleSuite,
    plots: plots.map((p) => path.relative(path.dirname(outPath), p)),
    descriptions: new Map(found.map((f) => [f.bench.name, f.bench.description])),
    quick: opts.quick,
    ...(opts.merge && fs.existsSync(outPath) ? { previous: fs.readFileSync(outPath, "utf8") } : {}),
  });
  if (!opts.noPlots) {
    // The real-testbed plots come from the tables of the report just rendered, kept sections included.
    log("rendering the real-testbed plots");
    try {
      const drawn = await renderRealPlots(md, plotsDir);
      plots = [...plots, ...drawn];
      md = withPlotReferences(md, new Set(drawn.map((f) => path.basename(f))), relDir);
    } catch (err) {
      failures.push({ name: "plots", error: err instanceof Error ? err.message : String(err) });
    }
  }
  fs.writeFileSync(outPath, md);
  return { path: outPath, results, failures, plots };
}

export function parseListOption(v: string | undefined): string[] | undefined {
  return v
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const outcome = await generateReport({
    quick: argv.includes("--quick"),
    only: parseListOption(val("--only")),
    skip: parseListOption(val("--skip")),
    out: val("--out"),
    noPlots: argv.includes("--no-plots"),
    plotsOnly: argv.includes("--plots-only"),
    merge: argv.includes("--merge"),
    ...(parseRepsOption(argv) !== undefined ? { reps: parseRepsOption(argv) } : {}),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(
    `wrote ${outcome.path} (${outcome.results.length} benchmarks, ${outcome.plots.length} plots)\n`,
  );
  for (const f of outcome.failures)
    process.stdout.write(`not run: ${f.name}: ${f.error.split("\n")[0]}\n`);
}
