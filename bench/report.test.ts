import { describe, expect, it } from "vitest";
import type { RunMeasures, RunResult } from "../src/sim/run.ts";
import { scenarioByName } from "../src/sim/scenarios.ts";
import {
  discoverBenches,
  formatText,
  previousSections,
  renderMarkdown,
  weirLosses,
} from "./report.ts";
import type { SuiteResult } from "./scenarios.ts";

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

describe("report", () => {
  it("finds every bench/*.ts that exports a benchmark, and not the harness or the report", async () => {
    const names = (await discoverBenches()).map((f) => f.bench.name);
    expect(names).toContain("scenarios");
    expect(names).toContain("overhead");
    expect(names).not.toContain("report");
    expect(names).not.toContain("harness");
  });

  it("lists each measure on which a baseline beat weir, with the evidence", () => {
    const suite: SuiteResult = {
      scenarios: [
        {
          scenario: scenarioByName("hog", true)!,
          runs: [
            run("weir", { p99LatencyMs: 40, batchCpuCores: 0.1, networkThrottledFraction: 0.3 }),
            run("none", { p99LatencyMs: 3, batchCpuCores: 0.8 }),
            run("static", { servedFraction: 0.8, p99LatencyMs: 700 }),
          ],
        },
      ],
    };
    const losses = weirLosses([suite]).join("\n");
    expect(losses).toMatch(/\*\*hog\*\* — weir: served 100\.0 %, p99 40\.0 ms/);
    expect(losses).toMatch(
      /none \(plain CFS\): lower p99 latency \(3\.0 vs 40\.0 ms\); more CPU to the batch partitions at equal service \(0\.80 vs 0\.10 cores\)/,
    );
    expect(losses).toMatch(/throttled in 30\.0 %/);
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
    const suite: SuiteResult = {
      scenarios: [
        {
          scenario,
          runs: [
            big("weir", { p99LatencyMs: 40, allocationChanges: n, cycles: 100 }),
            big("none", { p99LatencyMs: 3 }),
          ],
        },
      ],
    };
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
});
