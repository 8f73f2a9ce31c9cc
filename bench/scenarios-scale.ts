// Scale runs: 1,000 and 10,000 simulated partitions under weir and every baseline, through the
// real Manager. Reports the same quality measures plus what one cycle costs the manager.
// Run: npx tsx bench/scenarios-scale.ts [--json] [--quick]   (or: weir bench scenarios-scale)
import { type NamedPolicy, policyFactories, weirSmallDeadband } from "../src/sim/policies.ts";
import { scaleScenario } from "../src/sim/scenarios.ts";
import {
  type BenchFigure,
  type Benchmark,
  type BenchResult,
  isMain,
  runStandalone,
} from "./harness.ts";
import { labelOf, RUN_COLUMNS, runRow, runSuite, type SuiteResult } from "./scenarios.ts";

export const SCALE_SIZES = [1000, 10_000] as const;

/** Tables and figures of a scale suite. */
export function summariseScale(
  suite: SuiteResult,
): Omit<BenchResult, "name" | "machine" | "date" | "command"> {
  const figures: BenchFigure[] = [];
  const tables: NonNullable<BenchResult["tables"]> = [];
  for (const { scenario, runs } of suite.scenarios) {
    tables.push({
      title: `${scenario.name}: ${scenario.description}, ${scenario.durationMs / 1000} s at a ${scenario.tickMs} ms tick`,
      columns: RUN_COLUMNS,
      rows: runs.map(runRow),
    });
    tables.push({
      title: `${scenario.name}: cost of one manager cycle`,
      columns: [
        "policy",
        "cycle CPU µs (mean)",
        "cycle CPU µs (p99)",
        "policy step µs (mean)",
        "policy step µs (p99)",
        "process RSS MB",
      ],
      rows: runs.map((r) => [
        labelOf(r.policy),
        Math.round(r.measures.managerCpuUsPerCycle),
        Math.round(r.measures.managerCpuUsP99PerCycle),
        Math.round(r.measures.policyStepUsPerCycle),
        Math.round(r.measures.policyStepUsP99PerCycle),
        Math.round(r.measures.processRssMb),
      ]),
    });
    const weir = runs.find((r) => r.policy === "weir");
    if (weir && scenario.partitions.length === 10_000) {
      const stepMs = weir.measures.policyStepUsPerCycle / 1000;
      figures.push({
        name: "weir policy step inside the manager, 10,000 partitions (mean CPU)",
        value: Math.round(stepMs * 100) / 100,
        unit: "ms",
        target: "<= 1 ms",
        meets: stepMs <= 1,
      });
      figures.push({
        name: "weir whole manager cycle (sample + step + apply), 10,000 sim partitions (mean CPU)",
        value: Math.round(weir.measures.managerCpuUsPerCycle / 100) / 10,
        unit: "ms",
      });
    }
    const oracle = runs.find((r) => r.policy === "oracle");
    if (weir && oracle)
      figures.push({
        name: `${scenario.name}: weir served ÷ oracle served`,
        value:
          Math.round(
            (weir.measures.servedPackets / Math.max(1, oracle.measures.servedPackets)) * 1000,
          ) / 10,
        unit: "%",
        target: ">= 95 %",
        meets: weir.measures.servedPackets >= 0.95 * oracle.measures.servedPackets,
      });
  }
  return {
    figures,
    tables,
    notes: [
      "Latency resolution is the tick (5 ms at 1,000 partitions, 10 ms at 10,000).",
      "Cycle CPU is process CPU time around Manager.runCycle (sim sensors, policy, sim actuators); the policy step alone is timed the same way (process CPU, so garbage collection that lands in it counts).",
      "VPA-style updates once a minute (its updater's default), so in these short runs it keeps its initial equal requests.",
      "process RSS includes the simulator (queues, latency histograms) and is not the manager's footprint; bench/overhead.ts measures that on real cgroups.",
    ],
  };
}

/** Every policy, plus weir with a small dead-band (see weirLosses in report.ts for why). */
export const scalePolicies: readonly NamedPolicy[] = [...policyFactories, weirSmallDeadband];

export const scaleScenarios = (quick: boolean) => SCALE_SIZES.map((n) => scaleScenario(n, quick));

export const bench: Benchmark = {
  name: "scenarios-scale",
  description:
    "1,000 and 10,000 simulated partitions: quality per policy and the manager's cost per cycle",
  async run(ctx) {
    const suite = runSuite(scaleScenarios(ctx.quick), ctx.progress, scalePolicies);
    return { name: "scenarios-scale", ...summariseScale(suite) };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
