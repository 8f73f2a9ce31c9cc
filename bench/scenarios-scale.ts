// Scale runs: 1,000 and 10,000 simulated partitions under weir and every baseline, through the
// real Manager, several seeds each, beside the clairvoyant bound. Reports the quality measures
// (served, p99, batch CPU) plus what one cycle costs the manager. Simulated: never a verdict.
// Run: npx tsx bench/scenarios-scale.ts [--json] [--quick] [--reps N]   (or: weir bench scenarios-scale)
import { type NamedPolicy, policyFactories, weirSmallDeadband } from "../src/sim/policies.ts";
import { scaleScenario } from "../src/sim/scenarios.ts";
import {
  type BenchFigure,
  type Benchmark,
  type BenchResult,
  fmtStats,
  isMain,
  runStandalone,
} from "./harness.ts";
import {
  DEFAULT_SIM_REPS,
  labelOf,
  measuresOf,
  pairedRatios,
  policiesOf,
  RUN_COLUMNS,
  runRows,
  runSuite,
  type SuiteResult,
  servedOfBound,
  simFigure,
} from "./scenarios.ts";

export const SCALE_SIZES = [1000, 10_000] as const;

/** Tables and figures of a scale suite. */
export function summariseScale(
  suite: SuiteResult,
): Omit<BenchResult, "name" | "machine" | "date" | "command"> {
  const figures: BenchFigure[] = [];
  const tables: NonNullable<BenchResult["tables"]> = [];
  const n = suite.scenarios[0]?.reps.length ?? 0;
  for (const sr of suite.scenarios) {
    const { scenario } = sr;
    tables.push({
      title: `${scenario.name} (simulated, ${sr.reps.length} seeds): ${scenario.description}, ${scenario.durationMs / 1000} s at a ${scenario.tickMs} ms tick`,
      columns: RUN_COLUMNS,
      rows: runRows(sr),
    });
    tables.push({
      title: `${scenario.name}: cost of one manager cycle (median [min–max] over ${sr.reps.length} seeds)`,
      columns: [
        "policy",
        "cycle CPU µs (mean)",
        "cycle CPU µs (p99)",
        "policy step µs (mean)",
        "policy step µs (p99)",
        "process RSS MB",
      ],
      rows: policiesOf(sr).map((policy) => {
        const m = measuresOf(sr, policy);
        return [
          labelOf(policy),
          fmtStats(
            m.map((x) => x.managerCpuUsPerCycle),
            0,
          ),
          fmtStats(
            m.map((x) => x.managerCpuUsP99PerCycle),
            0,
          ),
          fmtStats(
            m.map((x) => x.policyStepUsPerCycle),
            0,
          ),
          fmtStats(
            m.map((x) => x.policyStepUsP99PerCycle),
            0,
          ),
          fmtStats(
            m.map((x) => x.processRssMb),
            0,
          ),
        ];
      }),
    });
    const weir = measuresOf(sr, "weir");
    const none = measuresOf(sr, "none");
    if (scenario.partitions.length === 10_000) {
      figures.push(
        simFigure(
          "weir policy step inside the manager, 10,000 partitions (mean CPU, simulated partitions)",
          weir.map((m) => m.policyStepUsPerCycle / 1000),
          "ms",
          "<= 1 ms",
          (m) => m <= 1,
          2,
        ),
        untargeted(
          simFigure(
            "weir whole manager cycle (sample + step + apply), 10,000 sim partitions (mean CPU)",
            weir.map((m) => m.managerCpuUsPerCycle / 1000),
            "ms",
            "",
            () => true,
          ),
        ),
      );
    }
    figures.push(
      simFigure(
        `${scenario.name} (simulated): weir served ÷ clairvoyant bound served`,
        servedOfBound(sr).map((x) => x * 100),
        "%",
        ">= 95 %",
        (m) => m >= 95,
      ),
      untargeted(
        simFigure(
          `${scenario.name} (simulated): weir p99 latency`,
          weir.map((m) => m.p99LatencyMs),
          "ms",
          "",
          () => true,
        ),
      ),
      untargeted(
        simFigure(
          `${scenario.name} (simulated): plain CFS p99 latency`,
          none.map((m) => m.p99LatencyMs),
          "ms",
          "",
          () => true,
        ),
      ),
      untargeted(
        simFigure(
          `${scenario.name} (simulated): batch CPU, weir ÷ clairvoyant bound's left-over`,
          pairedRatios(sr, (rep) => {
            const w = rep.runs.find((r) => r.policy === "weir");
            return w ? [w.measures.batchCpuCores * 100, rep.bound.batchCpuCoresLeft] : null;
          }),
          "%",
          "",
          () => true,
        ),
      ),
    );
  }
  return {
    figures,
    tables,
    notes: [
      `Simulated, ${n} seeds per size; every cell is the median [min–max] over them. Simulated figures are never a verdict on a budget.`,
      "Latency resolution is the tick (5 ms at 1,000 partitions, 10 ms at 10,000).",
      "Cycle CPU is process CPU time around Manager.runCycle (sim sensors, policy, sim actuators); the policy step alone is timed the same way (process CPU, so garbage collection that lands in it counts). Both depend on the machine's load, noted with the section.",
      "VPA-style (1-min loop) cannot act in these 10-20 s runs and keeps its initial equal requests; the 60× variant runs a loop a second.",
      "process RSS includes the simulator (queues, latency histograms) and is not the manager's footprint; bench/overhead.ts measures that on real cgroups.",
    ],
  };
}

/** A figure without a target: a measurement printed beside the budgeted ones. */
function untargeted(f: BenchFigure): BenchFigure {
  const { target: _t, meets: _m, ...rest } = f;
  return rest;
}

/** Every policy, plus weir with a small dead-band (see report-losses.ts for why). */
export const scalePolicies: readonly NamedPolicy[] = [...policyFactories, weirSmallDeadband];

export const scaleScenarios = (quick: boolean) => SCALE_SIZES.map((n) => scaleScenario(n, quick));

export const bench: Benchmark = {
  name: "scenarios-scale",
  description:
    "simulated: 1,000 and 10,000 partitions, several seeds each: served, p99 and batch CPU per policy beside the clairvoyant bound, and the manager's cost per cycle",
  async run(ctx) {
    const suite = runSuite(
      scaleScenarios(ctx.quick),
      ctx.progress,
      scalePolicies,
      ctx.reps ?? (ctx.quick ? 2 : DEFAULT_SIM_REPS),
    );
    return { name: "scenarios-scale", ...summariseScale(suite) };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
