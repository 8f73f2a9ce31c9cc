// The report's plots of the simulated suite: one PNG per simulated scenario, drawn with uPlot
// (the project's plotting library, as the dashboard) in Chromium (report-chromium.ts). Top row: every policy side by side — served ÷ offered, p99 latency and batch CPU,
// the dot at the median over seeds and a bar from the lowest to the highest seed, the
// clairvoyant bound first. Below, for the first seed over time, one panel per policy: the cap
// where the policy writes one and the CPU used; served and offered rate. A policy that sets only
// weights (cpu.shares) has no cap line: its allocation shows only in the CPU its partitions used.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { stats } from "./harness.ts";
import { screenshotPages } from "./report-chromium.ts";
import {
  labelOf,
  measuresOf,
  policiesOf,
  type ScenarioRuns,
  type SuiteResult,
} from "./scenarios.ts";

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

/** Axis labels short enough for eight policies side by side. */
const SHORT: Record<string, string> = {
  weir: "weir",
  none: "plain CFS",
  static: "equal caps",
  "static-weights": "weights",
  "vpa-style": "VPA 1 min",
  "vpa-style-fast": "VPA 1 s",
  "koordinator-style": "Koordinator",
  "weir-deadband-10m": "weir 10m band",
};

export interface SpreadPanel {
  title: string;
  unit: string;
  /** Per policy (bound first): median, min, max over the seeds; null where not measured. */
  median: Array<number | null>;
  min: Array<number | null>;
  max: Array<number | null>;
}

/** The spread panels of one scenario: labels (bound first) and three measures. */
export function spreadOf(sr: ScenarioRuns): { labels: string[]; panels: SpreadPanel[] } {
  const policies = policiesOf(sr);
  const labels = ["bound", ...policies.map((p) => SHORT[p] ?? p)];
  const panel = (
    title: string,
    unit: string,
    bound: (i: number) => number | null,
    of: (policy: string) => number[],
  ): SpreadPanel => {
    const cols = [
      sr.reps.map((_, i) => bound(i)).filter((x): x is number => x !== null),
      ...policies.map(of),
    ].map((xs) => stats(xs));
    return {
      title,
      unit,
      median: cols.map((s) => s?.median ?? null),
      min: cols.map((s) => s?.min ?? null),
      max: cols.map((s) => s?.max ?? null),
    };
  };
  return {
    labels,
    panels: [
      panel(
        "served ÷ offered, %",
        "%",
        (i) => sr.reps[i]!.bound.servedFraction * 100,
        (p) => measuresOf(sr, p).map((m) => m.servedFraction * 100),
      ),
      panel(
        "p99 latency, ms (log scale)",
        "ms",
        (i) => sr.reps[i]!.bound.p99LatencyMs,
        (p) => measuresOf(sr, p).map((m) => m.p99LatencyMs),
      ),
      panel(
        "batch CPU, cores (bound: capacity left)",
        "cores",
        (i) => sr.reps[i]!.bound.batchCpuCoresLeft,
        (p) => measuresOf(sr, p).map((m) => m.batchCpuCores),
      ),
    ],
  };
}

/**
 * The page script that draws one spread panel with uPlot: per label a dot at the median and a
 * bar from min to max (in the label's colour), on a log scale when `p.log`; shared by the
 * simulated and the real-testbed plots.
 */
export const SPREAD_SCRIPT = `function drawSpread(parent, labels, p, colors) {
  const cell = document.createElement("div"); cell.className = "cell"; parent.appendChild(cell);
  const xs = labels.map((_, i) => i);
  const whiskers = (u) => {
    const ctx = u.ctx; ctx.save(); ctx.lineWidth = 2 * devicePixelRatio;
    for (let i = 0; i < xs.length; i++) {
      if (p.min[i] === null || p.max[i] === null) continue;
      const x = u.valToPos(i, "x", true);
      ctx.strokeStyle = colors[i % colors.length];
      ctx.beginPath(); ctx.moveTo(x, u.valToPos(p.min[i], "y", true));
      ctx.lineTo(x, u.valToPos(p.max[i], "y", true)); ctx.stroke();
      for (const v of [p.min[i], p.max[i]]) {
        const y = u.valToPos(v, "y", true);
        ctx.beginPath(); ctx.moveTo(x - 6 * devicePixelRatio, y); ctx.lineTo(x + 6 * devicePixelRatio, y); ctx.stroke();
      }
    }
    ctx.restore();
  };
  const los = p.min.filter((v) => v !== null), his = p.max.filter((v) => v !== null);
  const lo = los.length ? Math.min(...los) : 0, hi = his.length ? Math.max(...his) : 1;
  new uPlot({ title: p.title, width: 600, height: 260,
    scales: { x: { time: false, range: [-0.5, xs.length - 0.5] },
      y: p.log ? { distr: 3, range: [10 ** Math.floor(Math.log10(Math.max(0.01, lo))), 10 ** Math.ceil(Math.log10(hi))] } : { range: [Math.min(0, lo), hi * 1.08 + 1e-9] } },
    axes: [{ splits: () => xs, values: (u, s) => s.map((i) => labels[i] ?? ""), size: 28 + 13 * Math.max(...labels.map((l) => l.split("\\n").length)), font: "11px system-ui" },
      { label: p.unit, size: 56 }],
    legend: { show: false },
    series: [{}, { label: "median", stroke: "#222", width: 0, paths: () => null,
      points: { show: true, size: 9, fill: "#222" } }],
    hooks: { draw: [whiskers] } }, [xs, p.median], cell);
}`;

function plotPage(title: string, sr: ScenarioRuns): string {
  const req = createRequire(import.meta.url);
  const js = fs.readFileSync(req.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
  const css = fs.readFileSync(req.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const runs = (sr.reps[0]?.runs ?? []).filter((r) => r.series);
  const series = runs.map((r) => ({
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
h1{font-size:16px;margin:0 0 8px}h2{font-size:14px;margin:10px 0 4px}
.grid{display:grid;grid-template-columns:repeat(3,610px);gap:10px}
.cell{border:1px solid #ddd;padding:4px}.cell h3{font-size:13px;margin:2px 4px}
.u-legend{font-size:11px}.u-title{font-size:12px;font-weight:normal}</style></head><body>
<h1>${title.replaceAll("<", "&lt;")}</h1>
<h2>Every policy, ${sr.reps.length} seeds: dot = median, bar = lowest to highest seed</h2>
<div class="grid" id="spread"></div>
<h2>Seed 1 over time, one panel per policy: cap where the policy writes one, CPU used, served and offered rate</h2>
<div class="grid" id="grid"></div>
<script>${js}</script><script>${SPREAD_SCRIPT}</script><script>
(() => {
const SPREAD = ${JSON.stringify(spreadOf(sr))};
const RUNS = ${JSON.stringify(series)};
const COLORS = ${JSON.stringify(COLORS)};
for (const p of SPREAD.panels) drawSpread(document.getElementById("spread"), SPREAD.labels, { ...p, log: p.unit === "ms" }, COLORS);
for (const run of RUNS) {
  const cell = document.createElement("div"); cell.className = "cell";
  cell.innerHTML = "<h3>" + run.label + "</h3>"; document.getElementById("grid").appendChild(cell);
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
  new uPlot({ title: "cap (solid; legend (none): no cap, weights only) and CPU used (dashed), millicores", width: 600, height: 200,
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
  return screenshotPages(
    suite.scenarios
      .filter((sr) => sr.reps.length > 0)
      .map((sr) => ({
        file: path.join(dir, `${sr.scenario.name}.png`),
        name: sr.scenario.name,
        html: plotPage(`${sr.scenario.name} (simulated): ${sr.scenario.description}`, sr),
      })),
  );
}
