// The report's plots of the real-testbed comparisons, drawn from BENCHMARKS.md itself: every
// table of a section whose rows are policies ("policy" column) and whose cells are
// "median [min–max]" over repetitions gets one PNG, one panel per measured column, every
// policy side by side (a dot at the median, a bar from the lowest to the highest repetition).
// Reading the report's own tables, not a benchmark's memory, lets a `--merge` run (or
// `--plots-only`) redraw sections it did not re-run, whichever branch or run wrote them, and the
// plot can never disagree with the table above it. A table with a leading "scenario" column
// gets one PNG per scenario. The image goes right below its table.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { type PlotPage, screenshotPages } from "./report-chromium.ts";
import { SPREAD_SCRIPT } from "./report-plots.ts";

/** Sections drawn by the simulated suite's own plots (report-plots.ts), not from tables. */
const SIMULATED = new Set(["scenarios", "scenarios-scale"]);

/** The alt text every real-testbed plot reference starts with (how a merge finds old ones). */
export const PLOT_ALT = "plot of the table above";

export interface Stat {
  median: number;
  min: number;
  max: number;
}

/** "1.2 [0.9–1.6]", "100.0 [100.0]" or a bare "1" (min = max = median); null otherwise. */
export function parseStatCell(cell: string): Stat | null {
  const num = "(-?\\d+(?:\\.\\d+)?)";
  const m = new RegExp(`^${num}(?: \\[${num}(?:–${num})?\\])?$`).exec(cell.trim());
  if (!m) return null;
  const median = Number(m[1]);
  const min = m[2] === undefined ? median : Number(m[2]);
  const max = m[3] === undefined ? min : Number(m[3]);
  return { median, min, max };
}

export interface RealPlot {
  section: string;
  /** File name without directory: `<section>-<slug>.png`. */
  file: string;
  title: string;
  /** Line index (in the markdown's lines) of the table's last row. */
  afterLine: number;
  policies: string[];
  panels: Array<{ title: string; log: boolean; stats: Array<Stat | null> }>;
}

const cellsOf = (row: string): string[] =>
  row
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replaceAll("\\|", "|"));

const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

/**
 * Every plot the real-testbed sections of `md` call for. A column is a panel when at least one
 * of its cells is a median [min–max]; a p99 or other millisecond column whose values span more
 * than 10× is drawn on a log scale.
 */
export function realPlotsOf(md: string): RealPlot[] {
  const lines = md.split("\n");
  const plots: RealPlot[] = [];
  let section: string | null = null;
  let k = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith("## ")) {
      section = l.slice(3).trim();
      k = 0;
      continue;
    }
    const title = /^\*\*(.+)\*\*$/.exec(l)?.[1];
    if (!section || SIMULATED.has(section) || !title || !/median \[min–max\]/.test(title)) continue;
    // **title**, blank, header, separator, rows
    if (!lines[i + 2]?.startsWith("| ") || !lines[i + 3]?.startsWith("|---")) continue;
    const header = cellsOf(lines[i + 2]!);
    const policyCol = header.indexOf("policy");
    if (policyCol < 0) continue;
    let end = i + 4;
    while (lines[end]?.startsWith("| ")) end++;
    const rows = lines.slice(i + 4, end).map(cellsOf);
    i = end - 1;
    k++;
    const groupCol = policyCol > 0 ? 0 : -1;
    const groups =
      groupCol < 0 ? [null] : [...new Set(rows.map((r) => r[groupCol] ?? ""))].filter(Boolean);
    for (const g of groups) {
      const rs = g === null ? rows : rows.filter((r) => r[groupCol] === g);
      const panels: RealPlot["panels"] = [];
      header.forEach((name, c) => {
        if (c <= policyCol) return;
        const stats = rs.map((r) => parseStatCell(r[c] ?? ""));
        // a measured column has at least one "median [min–max]" cell
        if (!rs.some((r, j) => stats[j] && (r[c] ?? "").includes("["))) return;
        const some = stats.filter((s): s is Stat => s !== null);
        const lo = Math.min(...some.map((s) => s.min));
        const hi = Math.max(...some.map((s) => s.max));
        panels.push({ title: name, log: /\bms\b/.test(name) && lo > 0 && hi / lo > 10, stats });
      });
      if (panels.length === 0) continue;
      const head = title.split(" — ")[0]!;
      const name = g ?? (title.includes(" — ") && head.length <= 20 ? head : String(k));
      plots.push({
        section,
        file: `${section}-${slug(name)}.png`,
        title: `${section}${g ? ` — ${g}` : ""}: ${title}`,
        afterLine: end - 1,
        policies: rs.map((r) => r[policyCol] ?? ""),
        panels,
      });
    }
  }
  return plots;
}

/** Short axis labels: the usual policies by a short name, others without their parenthesis. */
export function shortPolicy(label: string): string {
  const known: Array<[RegExp, string]> = [
    [/^none \(plain CFS\)|^plain CFS/, "plain CFS"],
    [/^static weights/, "weights"],
    [/^static equal caps/, "equal caps"],
    [/^VPA-style, 60×/, "VPA 1 s"],
    [/^VPA-style/, "VPA"],
    [/^Koordinator/, "Koordinator"],
    [/^weir with the light-partition weight floor/, "weir + floor"],
    [/^reference: plain CFS, hog stopped/, "no hog"],
    [/^reference: .*cpuset split/, "cpuset split"],
    [/^reference: .*hog hard-capped by hand/, "hog capped"],
  ];
  for (const [re, s] of known) if (re.test(label)) return s;
  const bare = label.replace(/\s*\(.*$/, "").replace(/^hand-set /, "");
  return bare.length > 18 ? `${bare.slice(0, 17)}…` : bare;
}

/** Greedy word wrap at `width` characters, lines joined by "\n". */
export function wrap(text: string, width: number): string {
  const lines: string[] = [];
  for (const w of text.split(" ")) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + 1 + w.length <= width) lines[last] += ` ${w}`;
    else lines.push(w);
  }
  return lines.join("\n");
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const more = ["#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939"];
const PALETTE = [...COLORS, ...more];

const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");

/** The page for one plot: a key (number, colour, full policy name), then the panels. */
export function realPlotPage(p: RealPlot): string {
  const req = createRequire(import.meta.url);
  const js = fs.readFileSync(req.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
  const css = fs.readFileSync(req.resolve("uplot/dist/uPlot.min.css"), "utf8");
  // Beyond 8 policies a panel has no room for names under the axis: the numbers and the key.
  const labels = p.policies.map((x, i) =>
    p.policies.length > 8 ? String(i + 1) : `${i + 1}\n${wrap(shortPolicy(x), 9)}`,
  );
  const key = p.policies
    .map(
      (x, i) => `<li><b style="color:${PALETTE[i % PALETTE.length]}">${i + 1}</b> ${esc(x)}</li>`,
    )
    .join("");
  const panels = p.panels.map((x) => ({
    title: x.title + (x.log ? " (log scale)" : ""),
    unit: "",
    log: x.log,
    median: x.stats.map((s) => s?.median ?? null),
    min: x.stats.map((s) => s?.min ?? null),
    max: x.stats.map((s) => s?.max ?? null),
  }));
  return `<!doctype html><html><head><meta charset="utf-8"><style>${css}
body{font:13px/1.3 system-ui,sans-serif;margin:12px;background:#fff;color:#222;width:1870px}
h1{font-size:16px;margin:0 0 6px}ol{columns:2;margin:4px 0 8px;padding-left:0;list-style:none;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(3,610px);gap:10px}
.cell{border:1px solid #ddd;padding:4px}.u-title{font-size:12px;font-weight:normal}</style></head><body>
<h1>${esc(p.title)} — real testbed; dot = median, bar = lowest to highest repetition</h1>
<ol>${key}</ol><div class="grid" id="spread"></div>
<script>${js}</script><script>${SPREAD_SCRIPT}</script><script>
(() => {
const LABELS = ${JSON.stringify(labels)};
const COLORS = ${JSON.stringify(PALETTE)};
for (const p of ${JSON.stringify(panels)}) drawSpread(document.getElementById("spread"), LABELS, p, COLORS);
document.body.dataset.done = "1";
})();
</script></body></html>`;
}

/**
 * `md` with every real-testbed plot referenced right below its table (old references removed
 * first), for the plots in `drawn` (file names); `relDir` is the plots' directory relative to
 * the markdown file.
 */
export function withPlotReferences(md: string, drawn: Set<string>, relDir: string): string {
  const clean = md
    .split("\n")
    .filter((l, i, all) => !l.startsWith(`![${PLOT_ALT}`) && !isBlankAfterPlot(all, i));
  const plots = realPlotsOf(clean.join("\n")).filter((p) => drawn.has(p.file));
  for (const p of [...plots].reverse())
    clean.splice(
      p.afterLine + 1,
      0,
      "",
      `![${PLOT_ALT}: ${p.file.replace(/\.png$/, "")}](${relDir}/${p.file})`,
    );
  return clean.join("\n");
}

const isBlankAfterPlot = (all: string[], i: number): boolean =>
  all[i] === "" && (all[i + 1]?.startsWith(`![${PLOT_ALT}`) ?? false);

/** Draw every real-testbed plot of `md` into `dir`; returns the files written. */
export function renderRealPlots(md: string, dir: string): Promise<string[]> {
  const pages: PlotPage[] = realPlotsOf(md).map((p) => ({
    file: path.join(dir, p.file),
    name: p.file,
    html: realPlotPage(p),
  }));
  return screenshotPages(pages);
}
