import { describe, expect, it } from "vitest";
import type { BoundMeasures } from "../src/sim/bound.ts";
import type { RunMeasures, RunResult } from "../src/sim/measures.ts";
import type { Scenario } from "../src/sim/run.ts";
import { scenarioByName } from "../src/sim/scenarios.ts";
import { weirLosses } from "./report-losses.ts";
import { mergedNote, previousSections, renderMarkdown } from "./report-markdown.ts";
import { discoverBenches, formatText } from "./report-run.ts";
import type { Repetition, SuiteResult } from "./scenarios.ts";

const measures = (m: Partial<RunMeasures>): RunMeasures => ({
  offeredPackets: 1000,
  servedPackets: 1000,
  droppedPackets: 0,
  servedFraction: 1,
  dropFraction: 0,
  p50LatencyMs: 1,
  p99LatencyMs: 2,
  networkCpuCores: 1,
  batchCpuCores: 0.5,
  networkThrottledFraction: 0,
  allocationWrites: 10,
  allocationChanges: 10,
  reactionMs: null,
  recoveryMs: null,
  managerCpuMs: 1,
  managerCpuUsPerCycle: 10,
  managerCpuUsP99PerCycle: 20,
  policyStepUsPerCycle: 5,
  policyStepUsP99PerCycle: 8,
  processRssMb: 100,
  cycles: 100,
  wallMs: 1,
  ...m,
});

const run = (policy: string, m: Partial<RunMeasures>): RunResult => ({
  scenario: "hog",
  policy,
  capacityCpuMillis: 1900,
  measures: measures(m),
});

const bound: BoundMeasures = {
  offeredPackets: 1000,
  servedPackets: 1000,
  droppedPackets: 0,
  servedFraction: 1,
  p50LatencyMs: 0.5,
  p99LatencyMs: 1,
  networkCpuCores: 1,
  batchCpuCoresLeft: 0.9,
};

/** A suite of one scenario with one repetition per element of `reps`. */
const suiteOf = (scenario: Scenario, ...reps: RunResult[][]): SuiteResult => ({
  scenarios: [
    {
      scenario,
      reps: reps.map((runs, i): Repetition => ({ seed: i, bound, runs })),
    },
  ],
});

describe("report", () => {
  it("finds every bench/*.ts that exports a benchmark, and not the harness or the report", async () => {
    const names = (await discoverBenches()).map((f) => f.bench.name);
    expect(names).toContain("scenarios");
    expect(names).toContain("overhead");
    expect(names).not.toContain("report");
    expect(names).not.toContain("harness");
  });

  it("lists each measure on which a baseline beat weir, with the evidence", () => {
    const rep = (weirP99: number, noneP99: number) => [
      run("weir", { p99LatencyMs: weirP99, batchCpuCores: 0.1, networkThrottledFraction: 0.3 }),
      run("none", { p99LatencyMs: noneP99, batchCpuCores: 0.8, networkCpuCores: 0.9 }),
      run("static", { servedFraction: 0.8, p99LatencyMs: 700 }),
    ];
    // Three seeds: plain CFS has the lower p99 in two of them (medians 40 vs 3 ms).
    const suite = suiteOf(scenarioByName("hog", true)!, rep(40, 3), rep(30, 2), rep(50, 60));
    const losses = weirLosses([suite]).join("\n");
    expect(losses).toMatch(
      /\*\*hog\*\* \(simulated, median of 3 seeds\) — weir: served 100\.0 %, p99 40\.0 ms/,
    );
    expect(losses).toMatch(
      /none \(plain CFS\): lower p99 latency \(3\.0 vs 40\.0 ms, in 2 of 3 seeds\); more CPU to the batch partitions at equal service \(0\.80 vs 0\.10 cores, in 3 of 3 seeds; network partitions used 0\.90 vs weir's 1\.00 cores\)/,
    );
    expect(losses).toMatch(/throttled in 30\.0 % of their CFS periods \(median\)/);
    // static serves less, with a worse p99: nothing to report for it.
    expect(losses).not.toMatch(/static equal caps/);
  });

  it("gives the dead-band the policy applies (capped at 50m), not 1 % of a large capacity", () => {
    const big = (policy: string, m: Partial<RunMeasures>): RunResult => ({
      ...run(policy, m),
      capacityCpuMillis: 100_000,
    });
    const scenario = scenarioByName("hog", true)!;
    const n = scenario.partitions.length;
    const suite = suiteOf(scenario, [
      big("weir", { p99LatencyMs: 40, allocationChanges: n, cycles: 100 }),
      big("none", { p99LatencyMs: 3 }),
    ]);
    const losses = weirLosses([suite]).join("\n");
    // 1 % of 100,000m is 1,000m; the policy caps the band at 50m
    expect(losses).toContain(
      "its dead-band is 1 % of capacity, at most 50 millicores = 50 millicores here",
    );
    expect(losses).not.toContain("1000 millicores");
  });

  it("writes the budgets table, the command and the machine into the markdown", () => {
    const result = {
      name: "demo",
      command: "weir bench demo",
      machine: "test machine",
      date: "2026-01-01",
      figures: [{ name: "x", value: 2, unit: "ms", target: "<= 1 ms", meets: false }],
      tables: [{ title: "t", columns: ["a", "b"], rows: [[1, "x|y"]] }],
    };
    const md = renderMarkdown({
      results: [result],
      failures: [{ name: "overhead", error: "needs root" }],
      suite: null,
      plots: [],
      descriptions: new Map([["demo", "a demo"]]),
      quick: false,
    });
    expect(md).toContain("| `weir bench demo` | x | 2 ms | <= 1 ms | **no** |");
    expect(md.indexOf("**Real testbed — the verdicts**")).toBeLessThan(
      md.indexOf("`weir bench demo`"),
    );
    expect(md).toContain("| 1 | x\\|y |");
    expect(md).toContain("- `overhead`: needs root");
    expect(formatText(result)).toContain("x: 2 ms (target <= 1 ms)  MISSES");
  });

  it("a merge keeps the budget rows of benchmarks that kept their section, and no orphan rows", () => {
    const previous = [
      "# Benchmarks",
      "",
      "## Against the budgets in bench/README.md",
      "",
      "| benchmark | figure | value | target | meets |",
      "|---|---|---|---|---|",
      "| `weir bench old` | y | 3 ms | <= 1 ms | **no** |",
      "| `npx tsx bench/gone.ts --reps 5` | z | 1 x | >= 2 | **no** |",
      "",
      "## old",
      "",
      "Command: `weir bench old` — m — 2026-01-01",
      "",
    ].join("\n");
    const md = renderMarkdown({
      results: [],
      failures: [],
      suite: null,
      plots: [],
      descriptions: new Map(),
      quick: false,
      previous,
    });
    expect(md).toContain("| `weir bench old` | y | 3 ms | <= 1 ms | **no** |");
    expect(md).not.toContain("bench/gone.ts");
  });

  it("puts simulated figures in their own table, never as a verdict, with their range, reps and the load", () => {
    const real = {
      name: "real",
      command: "weir bench real --reps 5",
      machine: "m",
      date: "2026-01-01",
      loadAverage: [1.2, 3.4] as [number, number],
      figures: [{ name: "r", value: 99, unit: "ms", target: "<= 300 ms", meets: true }],
    };
    const sim = {
      name: "scenarios",
      command: "weir bench scenarios",
      machine: "m",
      date: "2026-01-01",
      loadAverage: [0.5, 0.7] as [number, number],
      figures: [
        {
          name: "s",
          value: 100,
          unit: "%",
          target: ">= 95 %",
          meets: true,
          simulated: true,
          reps: 5,
          range: [99.5, 100] as [number, number],
        },
      ],
    };
    const md = renderMarkdown({
      results: [sim, real],
      failures: [],
      suite: null,
      plots: [],
      descriptions: new Map(),
      quick: false,
    });
    const realRow = "| `weir bench real --reps 5` | r | 99 ms; load 1.2 → 3.4 | <= 300 ms | yes |";
    const simRow =
      "| `weir bench scenarios` | s | 100 % [99.5–100], 5 reps | >= 95 % | sim: would meet |";
    expect(md).toContain(realRow);
    expect(md).toContain(simRow);
    // The real table comes first; the simulated one is headed as never a verdict.
    const simHead = md.indexOf("**Simulated — indicative, never a verdict**");
    expect(md.indexOf(realRow)).toBeLessThan(simHead);
    expect(simHead).toBeLessThan(md.indexOf(simRow));
    expect(md).toContain("load average (1 min) 1.20 at start, 3.40 at end");
    // A simulated latency is virtual time: no load beside it; a simulated CPU cost has it.
    const cost = renderMarkdown({
      results: [
        {
          ...sim,
          figures: [
            { name: "sim p99", value: 2, unit: "ms", simulated: true },
            { name: "step CPU", value: 6, unit: "ms", simulated: true },
          ],
        },
      ],
      failures: [],
      suite: null,
      plots: [],
      descriptions: new Map(),
      quick: false,
    });
    expect(cost).toContain("| sim p99 | 2 ms |");
    expect(cost).toContain("| step CPU | 6 ms; load 0.5 → 0.7 |");
  });
});

describe("weir bench report --merge", () => {
  it("merge keeps sections and budget rows of benchmarks not re-run", () => {
    const md = [
      "# Benchmarks",
      "",
      "## Against the budgets in bench/README.md",
      "",
      "| benchmark | figure | value | target | meets |",
      "|---|---|---|---|---|",
      "| `weir bench datagram` | x | 1 | >= 2 | **no** |",
      "| `weir bench conservation-real` | y | 1 | <= 2 | yes |",
      "",
      "## Where weir loses, and why",
      "",
      "- sim losses",
      "",
      "## datagram",
      "",
      "datagram body",
      "",
      "## conservation-real",
      "",
      "old body",
      "",
    ].join("\n");
    const kept = previousSections(md, new Set(["conservation-real"]), false);
    expect(kept.budgetRows).toEqual(["| `weir bench datagram` | x | 1 | >= 2 | **no** |"]);
    expect(kept.sections).toEqual([
      { name: "datagram", lines: ["", "## datagram", "", "datagram body"] },
    ]);
    expect(kept.losses).toEqual(["## Where weir loses, and why", "", "- sim losses"]);
    expect(previousSections(md, new Set(), true).losses).toBeNull();
  });

  it("re-running one simulated suite keeps the other suite's entries in 'where weir loses'", () => {
    const md = [
      "# Benchmarks",
      "",
      "## Where weir loses in the simulator, and why",
      "",
      "- **hog** (simulated) — old hog entry:",
      "  - old hog loss",
      "- **scale-1000** (simulated) — scale entry:",
      "  - none (plain CFS): fewer cgroup writes",
      "",
      "Limits of the simulation (they are not the kernel):",
      "",
      "## scenarios",
      "",
      "old body",
      "",
    ].join("\n");
    const kept = previousSections(md, new Set(["scenarios"]), true);
    expect(kept.lossEntries.map((e) => e.scenario)).toEqual(["hog", "scale-1000"]);
    // scenarios re-runs the hog scenario: weir loses on p99 there now; scale-1000 is kept.
    const suite = suiteOf(scenarioByName("hog")!, [
      run("weir", { p99LatencyMs: 9 }),
      run("none", { p99LatencyMs: 2 }),
    ]);
    const out = renderMarkdown({
      results: [],
      failures: [],
      suite,
      plots: [],
      descriptions: new Map(),
      quick: false,
      previous: md,
    });
    expect(out).not.toContain("old hog loss");
    expect(out).toMatch(/- \*\*hog\*\* \(simulated, median of 1 seeds?\)/);
    expect(out).toContain(
      "- **scale-1000** (simulated) — scale entry:\n  - none (plain CFS): fewer cgroup writes",
    );
  });
});

describe("mergedNote", () => {
  it("lists the kept sections by the date their own command line gives, newest first", () => {
    const section = (name: string, date: string | null) => ({
      name,
      lines: [
        "",
        `## ${name}`,
        "",
        date
          ? `Command: \`weir bench ${name}\` — 2 x CPU, Linux — ${date} — load 1.0`
          : "no command",
      ],
    });
    expect(
      mergedNote(
        ["goals-real"],
        [
          section("bpf", "2026-11-30"),
          section("overhead", "2026-12-02"),
          section("datagram", "2026-11-30"),
          section("odd", null),
        ],
        "2026-12-02",
      ),
    ).toBe(
      "> **Merged**: this run re-ran `goals-real`; every other section is kept from an earlier report and names its own command, machine and date (earlier on 2026-12-02: `overhead`; 2026-11-30: `bpf`, `datagram`; undated: `odd`).",
    );
    expect(mergedNote([], [], "2026-12-02")).toBe(
      "> **Merged**: this run re-ran nothing; every other section is kept from an earlier report and names its own command, machine and date (none).",
    );
  });
});
