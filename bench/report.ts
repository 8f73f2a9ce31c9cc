// The report generator: finds every bench/*.ts that exports `bench`, runs them, and writes
// BENCHMARKS.md (machine, date, commands, budgets, weir and every baseline side by side,
// where weir loses and why) with PNG plots under docs/bench/ (uPlot drawn in Debian's
// Chromium through playwright-core; never a downloaded browser).
// Run: weir bench report [--quick] [--only a,b] [--skip a,b] [--out FILE] [--reps N] [--merge]
//  or: npx tsx bench/report.ts [same options]
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MODULE_EXT, PACKAGE_ROOT_URL } from "../src/core/package-files.ts";
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import { DEADBAND_MAX_CPU_MILLIS, deadbandCpuMillis } from "../src/policy/weir.ts";
import { DIAGNOSTIC_DEADBAND_CPU_MILLIS, weirSmallDeadband } from "../src/sim/policies.ts";
import type { RunResult } from "../src/sim/run.ts";
import {
  type BenchContext,
  type Benchmark,
  type BenchResult,
  isMain,
  machineDescription,
  parseRepsOption,
} from "./harness.ts";
import { labelOf, runSuite, type SuiteResult, summarise } from "./scenarios.ts";
import { scalePolicies, scaleScenarios, summariseScale } from "./scenarios-scale.ts";

/** Where the benchmark modules that run are: bench/ (sources) or dist/bench/ (compiled). */
export const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
export const REPO_ROOT = fileURLToPath(PACKAGE_ROOT_URL);
/** Files in bench/ that are not benchmarks. */
const NOT_BENCHES = new Set([`harness${MODULE_EXT}`, `report${MODULE_EXT}`]);

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
        !NOT_BENCHES.has(f),
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

function complete(
  partial: Omit<BenchResult, "machine" | "date" | "command">,
  quick: boolean,
  reps?: number,
): BenchResult {
  return {
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
  const partial = await bench.run({
    quick: opts.quick,
    progress: opts.progress ?? (() => {}),
    ...(opts.reps !== undefined ? { reps: opts.reps } : {}),
  });
  return complete(partial, opts.quick, opts.reps);
}

const pad = (s: string, n: number) => s + " ".repeat(Math.max(0, n - s.length));

/** A result as plain text for the terminal. */
export function formatText(r: BenchResult): string {
  const lines = [`${r.name} — ${r.machine} — ${r.date}`];
  for (const f of r.figures) {
    const mark = f.meets === undefined ? "" : f.meets ? "  ok" : "  MISSES";
    lines.push(
      `  ${f.name}: ${f.value} ${f.unit}${f.target ? ` (target ${f.target})` : ""}${mark}`,
    );
  }
  for (const t of r.tables ?? []) {
    lines.push("", `  ${t.title}`);
    const cells = [t.columns, ...t.rows.map((row) => row.map(String))];
    const widths = t.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
    for (const row of cells) lines.push(`  ${row.map((c, i) => pad(c, widths[i]!)).join("  ")}`);
  }
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  return `${lines.join("\n")}\n`;
}

const mdCell = (v: string | number) => String(v).replaceAll("|", "\\|");

function mdTable(columns: string[], rows: Array<Array<string | number>>): string {
  return [
    `| ${columns.map(mdCell).join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(mdCell).join(" | ")} |`),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// Plots: allocation and served rate over time, one panel per policy, one PNG per scenario.

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

function plotPage(title: string, runs: RunResult[]): string {
  const req = createRequire(import.meta.url);
  const js = fs.readFileSync(req.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
  const css = fs.readFileSync(req.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const data = runs.map((r) => ({
    label: labelOf(r.policy),
    t: r.series!.tMs.map((t) => t / 1000),
    parts: Object.entries(r.series!.partitions).map(([id, s]) => ({
      id,
      kind: s.kind,
      cap: s.capCpuMillis,
      used: s.cpuMillis,
      served: s.servedPacketsPerSec,
      offered: s.offeredPacketsPerSec,
    })),
  }));
  // Charts are drawn by a script inside the page; the data is inlined as JSON.
  return `<!doctype html><html><head><meta charset="utf-8"><style>${css}
body{font:13px/1.3 system-ui,sans-serif;margin:12px;background:#fff;color:#222}
h1{font-size:16px;margin:0 0 8px}.grid{display:grid;grid-template-columns:repeat(3,610px);gap:10px}
.cell{border:1px solid #ddd;padding:4px}.cell h2{font-size:14px;margin:2px 4px}
.u-legend{font-size:11px}.u-title{font-size:12px;font-weight:normal}</style></head><body>
<h1>${title.replaceAll("<", "&lt;")}</h1><div class="grid" id="grid"></div>
<script>${js}</script><script>
(() => {
const RUNS = ${JSON.stringify(data)};
const COLORS = ${JSON.stringify(COLORS)};
const grid = document.getElementById("grid");
for (const run of RUNS) {
  const cell = document.createElement("div"); cell.className = "cell";
  cell.innerHTML = "<h2>" + run.label + "</h2>"; grid.appendChild(cell);
  const alloc = [run.t], aSeries = [{}], served = [run.t], sSeries = [{}];
  run.parts.forEach((p, i) => {
    const color = COLORS[i % COLORS.length];
    const capped = p.cap.some((v) => v !== null);
    alloc.push(capped ? p.cap : p.cap.map(() => null));
    aSeries.push({ label: p.id + " cap" + (capped ? "" : " (none)"), stroke: color, width: 1.5 });
    alloc.push(p.used); aSeries.push({ label: p.id + " used", stroke: color, width: 1, dash: [3, 3] });
    if (p.kind === "network") {
      served.push(p.served); sSeries.push({ label: p.id + " served", stroke: color, width: 1.5 });
      served.push(p.offered); sSeries.push({ label: p.id + " offered", stroke: color, width: 1, dash: [3, 3] });
    }
  });
  const axes = (unit) => [{ label: "s" }, { label: unit, size: 56 }];
  new uPlot({ title: "CPU allocation (solid) and use (dashed), millicores", width: 600, height: 200,
    series: aSeries, axes: axes("millicores"), scales: { x: { time: false } }, legend: { show: true, live: false } }, alloc, cell);
  new uPlot({ title: "served (solid) and offered (dashed), packets/s", width: 600, height: 200,
    series: sSeries, axes: axes("packets/s"), scales: { x: { time: false } }, legend: { show: true, live: false } }, served, cell);
}
document.body.dataset.done = "1";
})();
</script></body></html>`;
}

/** Render one PNG per scenario of `suite` into `dir`; returns the files written. */
export async function renderPlots(suite: SuiteResult, dir: string): Promise<string[]> {
  const { chromium } = await import("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "weir-bench-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1900, height: 1000 },
  });
  const written: string[] = [];
  try {
    fs.mkdirSync(dir, { recursive: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    for (const { scenario, runs } of suite.scenarios) {
      const withSeries = runs.filter((r) => r.series);
      if (withSeries.length === 0) continue;
      await page.setContent(plotPage(`${scenario.name}: ${scenario.description}`, withSeries));
      await page
        .waitForSelector("body[data-done='1']", { timeout: 120_000 })
        .catch((e: unknown) => {
          throw new Error(`plot ${scenario.name}: ${errors.join("; ") || String(e)}`);
        });
      const file = path.join(dir, `${scenario.name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      written.push(file);
    }
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// Where weir loses: every measure on which a baseline beat weir, with the evidence.

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** Unused network allocation: mean over cycles of Σ(network caps) − Σ(network CPU used), cores. */
function idleNetworkAllocationCores(r: RunResult): number | null {
  if (!r.series) return null;
  const parts = Object.values(r.series.partitions).filter((p) => p.kind === "network");
  const n = r.series.tMs.length;
  if (n === 0 || parts.some((p) => p.capCpuMillis.some((c) => c === null))) return null;
  let sum = 0;
  for (let i = 0; i < n; i++)
    for (const p of parts) sum += (p.capCpuMillis[i] ?? 0) - (p.cpuMillis[i] ?? 0);
  return sum / n / 1000;
}

const same = (a: number, b: number) => Math.abs(a - b) <= 0.005;

/**
 * Markdown lines: per scenario, each baseline that beat weir on a measure (served ÷ offered,
 * p99 latency, batch CPU at equal service, cgroup writes at equal service), then what was
 * measured that explains it. Diagnostic variants of weir are used only as evidence.
 */
export function weirLosses(suites: SuiteResult[]): string[] {
  const out: string[] = [];
  for (const { scenario, runs } of suites.flatMap((s) => s.scenarios)) {
    const weir = runs.find((r) => r.policy === "weir");
    if (!weir) continue;
    const w = weir.measures;
    const items: string[] = [];
    let latencyLoss = false;
    let batchLoss = false;
    let servedLoss = false;
    for (const other of runs) {
      if (other === weir || other.policy.startsWith("weir")) continue;
      const o = other.measures;
      const wins: string[] = [];
      if (o.servedFraction - w.servedFraction > 0.005) {
        wins.push(`serves more (${pct(o.servedFraction)} vs ${pct(w.servedFraction)})`);
        servedLoss = true;
      }
      if (o.p99LatencyMs < w.p99LatencyMs * 0.8 && w.p99LatencyMs > 5) {
        wins.push(
          `lower p99 latency (${o.p99LatencyMs.toFixed(1)} vs ${w.p99LatencyMs.toFixed(1)} ms)`,
        );
        latencyLoss = true;
      }
      const comparable = o.servedFraction >= w.servedFraction - 0.005;
      if (
        comparable &&
        o.batchCpuCores - w.batchCpuCores > 0.05 * Math.max(1, scenario.cpus / 10)
      ) {
        wins.push(
          `more CPU to the batch partitions at ${same(o.servedFraction, w.servedFraction) ? "equal" : "better"} service (${o.batchCpuCores.toFixed(2)} vs ${w.batchCpuCores.toFixed(2)} cores)`,
        );
        batchLoss = true;
      }
      if (
        comparable &&
        other.policy !== "oracle" &&
        w.allocationWrites > 5 * Math.max(1, o.allocationWrites)
      )
        wins.push(
          `fewer cgroup writes at ${same(o.servedFraction, w.servedFraction) ? "equal" : "better"} service (${o.allocationWrites} vs ${w.allocationWrites})`,
        );
      if (wins.length > 0) items.push(`  - ${labelOf(other.policy)}: ${wins.join("; ")}.`);
    }
    if (scenario.reaction && w.reactionMs !== null && w.reactionMs > 300)
      items.push(
        `  - the budget: weir's reaction to the load step took ${w.reactionMs} ms (budget 300 ms).`,
      );
    if (items.length === 0) continue;
    const why: string[] = [];
    const idle = idleNetworkAllocationCores(weir);
    if (batchLoss && idle !== null)
      why.push(
        `weir's caps on network partitions exceeded what they used by ${idle.toFixed(2)} cores on average (headroom, slow shrinking, and left-over capacity shared by weight to network partitions that did not use it); with leftover "share" the batch partitions get only their weighted part of what is left`,
      );
    if (latencyLoss || servedLoss)
      why.push(
        `weir's network partitions were throttled in ${pct(w.networkThrottledFraction)} of their CFS periods: a burst above the cap waits for the next 100 ms period, while an uncapped partition (plain CFS, Koordinator's LS) runs it at once`,
      );
    const n = scenario.partitions.length;
    if (w.allocationChanges <= n * 1.05 && w.cycles > 10) {
      // the band the policy applies: a fraction of capacity, capped
      const knobs = defaultPolicyKnobs(weir.capacityCpuMillis);
      const diag = runs.find((r) => r.policy === weirSmallDeadband.name);
      why.push(
        `weir set each cap about once (${w.allocationChanges} changes over ${w.cycles} cycles × ${n} partitions) and never moved it again: its dead-band is ${knobs.deadbandFraction * 100} % of capacity, at most ${DEADBAND_MAX_CPU_MILLIS} millicores = ${Math.round(deadbandCpuMillis(knobs))} millicores here, and no change smaller than that is made (an equal share is ${Math.round(weir.capacityCpuMillis / n)} millicores)${diag ? `. The same run with a dead-band of ${DIAGNOSTIC_DEADBAND_CPU_MILLIS} millicores served ${pct(diag.measures.servedFraction)} (p99 ${diag.measures.p99LatencyMs.toFixed(1)} ms, batch ${diag.measures.batchCpuCores.toFixed(1)} cores, ${diag.measures.allocationWrites} writes)` : ""}`,
      );
    }
    out.push(
      `- **${scenario.name}** — weir: served ${pct(w.servedFraction)}, p99 ${w.p99LatencyMs.toFixed(1)} ms, batch ${w.batchCpuCores.toFixed(2)} cores, ${w.allocationWrites} writes. Better than weir:`,
      ...items,
      ...(why.length > 0 ? [`  - why (measured): ${why.join("; ")}.`] : []),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

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
      if (bench.name === "scenarios") {
        // Run the suite here (not through bench.run) to keep its time series for the plots.
        const { smallScenarios } = await import("../src/sim/scenarios.ts");
        suite = runSuite(smallScenarios(opts.quick), sub);
        results.push(complete({ name: "scenarios", ...summarise(suite) }, opts.quick));
      } else if (bench.name === "scenarios-scale") {
        scaleSuite = runSuite(scaleScenarios(opts.quick), sub, scalePolicies);
        results.push(
          complete({ name: "scenarios-scale", ...summariseScale(scaleSuite) }, opts.quick),
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
  const md = renderMarkdown({
    results,
    failures,
    suite,
    scaleSuite,
    plots: plots.map((p) => path.relative(path.dirname(outPath), p)),
    descriptions: new Map(found.map((f) => [f.bench.name, f.bench.description])),
    quick: opts.quick,
    ...(opts.merge && fs.existsSync(outPath) ? { previous: fs.readFileSync(outPath, "utf8") } : {}),
  });
  fs.writeFileSync(outPath, md);
  return { path: outPath, results, failures, plots };
}

export function renderMarkdown(input: {
  results: BenchResult[];
  failures: ReportOutcome["failures"];
  suite: SuiteResult | null;
  scaleSuite?: SuiteResult | null;
  plots: string[];
  descriptions: Map<string, string>;
  quick: boolean;
  /** The previous report: sections of benchmarks not in `results` are kept from it (merge). */
  previous?: string;
}): string {
  const { results, failures, suite, plots, descriptions, quick } = input;
  const kept = input.previous
    ? previousSections(
        input.previous,
        new Set(results.map((r) => r.name)),
        [suite, input.scaleSuite].some((x) => !!x),
      )
    : null;
  const suites = [suite, input.scaleSuite].filter((x): x is SuiteResult => !!x);
  const date = new Date().toISOString().slice(0, 10);
  const lines: string[] = [
    "# Benchmarks",
    "",
    `Generated by \`weir bench report${quick ? " --quick" : ""}\` on **${date}**, on ${machineDescription()}.`,
    "Every figure below comes from the command printed with it; rerun any one with `weir bench <name>`",
    "(or `npx tsx bench/<name>.ts`), or all of them with `weir bench report`. Nothing is typed in by hand.",
    "The machine was shared with other work while this ran; figures in time units are upper bounds.",
  ];
  if (quick)
    lines.push("", "> **Quick mode**: shortened runs (CI smoke). Numbers are indicative only.");
  if (kept)
    lines.push(
      "",
      `> **Merged**: this run re-ran ${results.map((r) => `\`${r.name}\``).join(", ") || "nothing"}; every other section is kept from the previous report and names its own command, machine and date.`,
    );

  const budgeted = results.flatMap((r) => r.figures.filter((f) => f.target).map((f) => ({ r, f })));
  lines.push("", "## Against the budgets in bench/README.md", "");
  if (kept && kept.budgetRows.length > 0)
    lines.push(
      "Rows of benchmarks not re-run this time are kept from the previous report (their own sections give their dates).",
      "",
    );
  if (budgeted.length === 0 && !kept?.budgetRows.length)
    lines.push("No benchmark with a budget ran.");
  else {
    const rows = budgeted.map(({ r, f }) => [
      `\`${r.command}\``,
      f.name,
      `${f.value} ${f.unit}`,
      f.target ?? "",
      f.meets === undefined ? "" : f.meets ? "yes" : "**no**",
    ]);
    const table = mdTable(["benchmark", "figure", "value", "target", "meets"], rows).split("\n");
    // Kept rows and new rows in benchmark-name order.
    const body = [...table.slice(2), ...(kept?.budgetRows ?? [])].sort((a, b) =>
      budgetRowName(a).localeCompare(budgetRowName(b)),
    );
    lines.push(table[0]!, table[1]!, ...body);
  }
  if (suites.length === 0 && kept?.losses) lines.push("", ...kept.losses);

  if (suites.length > 0) {
    lines.push(
      "",
      "## Where weir loses, and why",
      "",
      "Every measure on which a baseline did better than weir in these runs, per scenario, with what was measured that explains it (generated from the runs below).",
      "",
    );
    const losses = weirLosses(suites);
    if (losses.length === 0) lines.push("In these runs no baseline beat weir on any measure.");
    else lines.push(...losses);
    lines.push(
      "",
      "Limits of the simulation (they are not the kernel):",
      "CPU is shared among cgroups as a fluid per tick (1 ms here): normal-class groups by weighted max-min",
      "of cpu.shares (work-conserving), idle-class groups (cpu.idle = 1, e.g. the static-weights baseline's",
      "batch) only what the normal class leaves (the kernel gives them weight 3 against 1024, ≈ 0.3 % of a CPU",
      "under full contention). A group that wakes while same-class groups of at least its weight keep every",
      "CPU busy waits a uniform [0, 1.5 ms] (the kernel's base slice on 2 CPUs) before it runs. The kernel also",
      "splits a multi-threaded group's shares across CPUs and balances run queues, which the fluid model does",
      "not: compare `scenarios` with `scenarios-real` before trusting a simulated gain over plain CFS.",
      "Throttled time is accounted per tick; the quota-refill effect gives 50 % of a CPU for a 10 % quota",
      "rewritten every 20 ms, where the kernel gave 65 % on this project's test machines.",
      "Velocity drift is one shared random walk. `scenarios-real` is the check on all of this.",
    );
  }

  const sections: Array<{ name: string; lines: string[] }> = [];
  for (const r of results) {
    const start = lines.length;
    lines.push("", `## ${r.name}`, "");
    const d = descriptions.get(r.name);
    if (d) lines.push(d, "");
    lines.push(`Command: \`${r.command}\` — ${r.machine} — ${r.date}`, "");
    if (r.figures.length > 0)
      lines.push(
        mdTable(
          ["figure", "value", "target", "meets"],
          r.figures.map((f) => [
            f.name,
            `${f.value} ${f.unit}`,
            f.target ?? "",
            f.meets === undefined ? "" : f.meets ? "yes" : "**no**",
          ]),
        ),
        "",
      );
    for (const t of r.tables ?? [])
      lines.push(`**${t.title}**`, "", mdTable(t.columns, t.rows), "");
    if (r.name === "scenarios" && plots.length > 0) {
      lines.push(
        "Allocation (solid: cap, dashed: CPU used) and served rate (solid: served, dashed: offered) over time, one panel per policy:",
        "",
      );
      for (const p of plots)
        lines.push(`![${path.basename(p, ".png")}](${p.split(path.sep).join("/")})`, "");
    }
    for (const n of r.notes ?? []) lines.push(`- ${n}`);
    sections.push({ name: r.name, lines: lines.splice(start) });
  }
  for (const s of kept?.sections ?? []) sections.push(s);
  sections.sort((a, b) => a.name.localeCompare(b.name));
  for (const s of sections) lines.push(...s.lines);
  if (failures.length > 0) {
    lines.push("", "## Not run", "");
    for (const f of failures) lines.push(`- \`${f.name}\`: ${f.error.split("\n")[0]}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The benchmark name of a budget-table row ("| `weir bench <name> ...` | ..."). */
/** The benchmark a budget row belongs to (from its command); a row of a benchmark with no section of its own is not kept. */
const budgetRowName = (row: string): string => /`weir bench ([^ `]+)/.exec(row)?.[1] ?? row;

/**
 * From a previous report: the `## <name>` sections of benchmarks not in `rerun` (verbatim,
 * from the blank line before the heading to the next section), their budget-table rows, and
 * the simulated "Where weir loses, and why" section (when no simulated suite runs now).
 */
export function previousSections(
  md: string,
  rerun: Set<string>,
  suiteRuns: boolean,
): {
  sections: Array<{ name: string; lines: string[] }>;
  budgetRows: string[];
  losses: string[] | null;
} {
  const all = md.replace(/\n$/, "").split("\n");
  const heads: Array<{ at: number; name: string }> = [];
  all.forEach((l, i) => {
    if (l.startsWith("## ")) heads.push({ at: i, name: l.slice(3).trim() });
  });
  const sections: Array<{ name: string; lines: string[] }> = [];
  let budgetRows: string[] = [];
  let losses: string[] | null = null;
  heads.forEach((h, k) => {
    const end = k + 1 < heads.length ? heads[k + 1]!.at : all.length;
    const body = all.slice(h.at, end);
    while (body.length > 0 && body[body.length - 1] === "") body.pop();
    if (h.name.startsWith("Against the budgets"))
      budgetRows = body.filter(
        (l) =>
          l.startsWith("| `") &&
          !rerun.has(budgetRowName(l)) &&
          heads.some((x) => x.name === budgetRowName(l)),
      );
    else if (h.name.startsWith("Where weir loses")) {
      if (!suiteRuns) losses = body;
    } else if (h.name === "Not run") {
      // Failures belong to the run that had them.
    } else if (!rerun.has(h.name)) sections.push({ name: h.name, lines: ["", ...body] });
  });
  return { sections, budgetRows, losses };
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
