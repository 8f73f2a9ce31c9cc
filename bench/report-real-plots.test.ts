import { describe, expect, it } from "vitest";
import {
  PLOT_ALT,
  parseStatCell,
  realPlotsOf,
  shortPolicy,
  withPlotReferences,
  wrap,
} from "./report-real-plots.ts";

const MD = [
  "# Benchmarks",
  "",
  "## conservation-real",
  "",
  "**conserve — UDP + a hog (median [min–max] over repetitions)**",
  "",
  "| policy | host idle % | worst p99 ÷ no-hog | p99 a ms | note |",
  "|---|---|---|---|---|",
  "| weir | 4.5 [3.6–5.4] | 2.27 [1.78–2.72] | 6.6 [5.2–80.3] | x |",
  "| none (plain CFS) | 0.1 [0.1] | 3.53 [2.53–3.91] | 9.3 [5.7–13.5] | y |",
  "| reference: plain CFS, hog stopped | 64.6 [62.3–70.8] | 1 | 2.8 [2.3–4.3] | – |",
  "",
  "- a note",
  "",
  "## scenarios-real",
  "",
  "**real testbed (median [min–max] over 5 repetitions)**",
  "",
  "| scenario | policy | lost | p99 c ms |",
  "|---|---|---|---|",
  "| hog | weir | 0 [0] | 10.3 [5.7–11.0] |",
  "| hog | none (plain CFS) | 0 [0] | 12.1 [7.7–17.8] |",
  "| step | weir | 0 [0–3] | 9.1 [6.1–9.3] |",
  "",
  "## overhead",
  "",
  "**weir run, 5 repetitions per runtime: median [min–max]**",
  "",
  "| runtime | CPU, % of one core |",
  "|---|---|",
  "| compiled | 2.65 [2.5–2.8] |",
  "",
  "## scenarios",
  "",
  "**step (simulated): median [min–max] over 5 seeds**",
  "",
  "| policy | served % |",
  "|---|---|",
  "| weir | 100 [99–100] |",
].join("\n");

describe("real-testbed plots from the report's tables", () => {
  it("reads median [min–max] cells, a bare number as a point, and nothing else", () => {
    expect(parseStatCell("4.5 [3.6–5.4]")).toEqual({ median: 4.5, min: 3.6, max: 5.4 });
    expect(parseStatCell("100.0 [100.0]")).toEqual({ median: 100, min: 100, max: 100 });
    expect(parseStatCell("1")).toEqual({ median: 1, min: 1, max: 1 });
    expect(parseStatCell("-0.5 [-1–0]")).toEqual({ median: -0.5, min: -1, max: 0 });
    for (const c of ["–", "0 (stopped)", "5/5", "17187 → 14799", ""])
      expect(parseStatCell(c)).toBeNull();
  });

  it("draws one plot per policy table, one per scenario, none for simulated or policy-less tables", () => {
    const plots = realPlotsOf(MD);
    expect(plots.map((p) => p.file)).toEqual([
      "conservation-real-conserve.png",
      "scenarios-real-hog.png",
      "scenarios-real-step.png",
    ]);
    const [conserve, hog, step] = plots;
    expect(conserve!.policies).toEqual([
      "weir",
      "none (plain CFS)",
      "reference: plain CFS, hog stopped",
    ]);
    // "note" has no median [min–max] cell: not a panel
    expect(conserve!.panels.map((p) => p.title)).toEqual([
      "host idle %",
      "worst p99 ÷ no-hog",
      "p99 a ms",
    ]);
    expect(conserve!.panels[1]!.stats[2]).toEqual({ median: 1, min: 1, max: 1 });
    // a millisecond column spanning more than 10x is drawn on a log scale, others are not
    expect(conserve!.panels.map((p) => p.log)).toEqual([false, false, true]);
    expect(hog!.policies).toEqual(["weir", "none (plain CFS)"]);
    expect(step!.policies).toEqual(["weir"]);
    expect(step!.panels[0]!.stats[0]).toEqual({ median: 0, min: 0, max: 3 });
  });

  it("references each drawn plot below its table, and a second pass changes nothing", () => {
    const drawn = new Set(["conservation-real-conserve.png", "scenarios-real-hog.png"]);
    const once = withPlotReferences(MD, drawn, "docs/bench");
    const lines = once.split("\n");
    const at = lines.indexOf(
      `![${PLOT_ALT}: conservation-real-conserve](docs/bench/conservation-real-conserve.png)`,
    );
    expect(lines[at - 2]).toMatch(/^\| reference: plain CFS/);
    expect(lines[at - 1]).toBe("");
    expect(lines[at + 1]).toBe("");
    expect(once).toContain(`(docs/bench/scenarios-real-hog.png)`);
    expect(once).not.toContain("scenarios-real-step.png");
    expect(withPlotReferences(once, drawn, "docs/bench")).toBe(once);
    // with nothing drawn, the references go and the report is as it was
    expect(withPlotReferences(once, new Set(), "docs/bench")).toBe(MD);
  });

  it("gives the usual policies short axis names", () => {
    expect(shortPolicy("none (plain CFS)")).toBe("plain CFS");
    expect(shortPolicy("VPA-style, 60× faster (1-s loop)")).toBe("VPA 1 s");
    expect(
      shortPolicy(
        "reference: static weights, hog hard-capped by hand at 1000m (cpu.cfs_quota_us over 100 ms periods, burst = quota)",
      ),
    ).toBe("hog capped");
    expect(shortPolicy("weir (capacity 1 CPU: the pinned one)")).toBe("weir");
    expect(wrap("static equal caps", 9)).toBe("static\nequal\ncaps");
    expect(wrap("plain CFS", 9)).toBe("plain CFS");
  });
});
