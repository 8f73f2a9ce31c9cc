// Side-by-side scenarios: weir and every baseline on the same simulated load, through weir's
// real Manager, sensors-shaped sim counters and the CFS-bandwidth sim hypervisor.
// Run: npx tsx bench/scenarios.ts [--json] [--quick]   (or: weir bench scenarios)
import { type NamedPolicy, policyFactories, weirSmallDeadband } from "../src/sim/policies.ts";
import { capacityOf, type RunResult, runScenario, type Scenario } from "../src/sim/run.ts";
import { smallScenarios } from "../src/sim/scenarios.ts";
import {
  type BenchFigure,
  type Benchmark,
  type BenchResult,
  isMain,
  runStandalone,
} from "./harness.ts";

export interface SuiteResult {
  scenarios: Array<{ scenario: Scenario; runs: RunResult[] }>;
}

type Table = NonNullable<BenchResult["tables"]>[number];

export const labelOf = (policy: string): string =>
  [...policyFactories, weirSmallDeadband].find((p) => p.name === policy)?.label ?? policy;

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const ms = (x: number | null) => (x === null ? "—" : Math.round(x));

/** Run every policy on every scenario in `scenarios`; progress 0..1 over all runs. */
export function runSuite(
  scenarios: Scenario[],
  progress: (fraction: number, label?: string) => void = () => {},
  policies: readonly NamedPolicy[] = policyFactories,
): SuiteResult {
  const total = scenarios.length * policies.length;
  let done = 0;
  const out: SuiteResult = { scenarios: [] };
  for (const scenario of scenarios) {
    const runs: RunResult[] = [];
    for (const p of policies) {
      const label = `${scenario.name} / ${p.name}`;
      const r = runScenario(scenario, p.make, {
        onProgress: (f) => progress((done + f) / total, label),
        ...(p.knobs ? { knobs: p.knobs(capacityOf(scenario)) } : {}),
      });
      runs.push({ ...r, policy: p.name });
      done++;
      progress(done / total, label);
    }
    out.scenarios.push({ scenario, runs });
  }
  return out;
}

export const RUN_COLUMNS = [
  "policy",
  "served ÷ offered %",
  "dropped %",
  "p50 ms",
  "p99 ms",
  "network CPU (cores)",
  "batch CPU (cores)",
  "cgroup writes",
  "reaction ms",
  "recovery ms",
  "manager µs/cycle",
];

export function runRow(r: RunResult): Array<string | number> {
  const m = r.measures;
  return [
    labelOf(r.policy),
    r1(m.servedFraction * 100),
    r1(m.dropFraction * 100),
    r1(m.p50LatencyMs),
    r1(m.p99LatencyMs),
    r2(m.networkCpuCores),
    r2(m.batchCpuCores),
    m.allocationWrites,
    ms(m.reactionMs),
    ms(m.recoveryMs),
    Math.round(m.managerCpuUsPerCycle),
  ];
}

const find = (runs: RunResult[], policy: string) => runs.find((r) => r.policy === policy);

/** Tables and the figures checked against the budgets in bench/README.md. */
export function summarise(
  suite: SuiteResult,
): Omit<BenchResult, "name" | "machine" | "date" | "command"> {
  const tables: Table[] = [];
  const figures: BenchFigure[] = [];
  const notes: string[] = [];
  const vsOracle: Array<string | number>[] = [];
  for (const { scenario, runs } of suite.scenarios) {
    tables.push({
      title: `${scenario.name}: ${scenario.description}`,
      columns: RUN_COLUMNS,
      rows: runs.map(runRow),
    });
    const weir = find(runs, "weir");
    const oracle = find(runs, "oracle");
    const none = find(runs, "none");
    if (weir && oracle) {
      const ratio = weir.measures.servedPackets / Math.max(1, oracle.measures.servedPackets);
      vsOracle.push([
        scenario.name,
        r1(ratio * 100),
        none ? r1(none.measures.p99LatencyMs / Math.max(1e-9, weir.measures.p99LatencyMs)) : "—",
        r2(weir.measures.batchCpuCores),
        r2(oracle.measures.batchCpuCores),
      ]);
      if (scenario.name === "hog") {
        figures.push({
          name: "hog scenario: weir served ÷ oracle served",
          value: r1(ratio * 100),
          unit: "%",
          target: ">= 95 %",
          meets: ratio >= 0.95,
        });
        if (none) {
          const x = none.measures.p99LatencyMs / Math.max(1e-9, weir.measures.p99LatencyMs);
          figures.push({
            name: "hog scenario: p99 latency, plain CFS ÷ weir",
            value: r1(x),
            unit: "x",
            target: ">= 5x",
            meets: x >= 5,
          });
        }
      }
    }
    if (weir && scenario.reaction && scenario.name === "step") {
      const v = weir.measures.reactionMs;
      figures.push({
        name: "step scenario: reaction (load step -> 90 % of new allocation applied)",
        value: v ?? Number.NaN,
        unit: "ms",
        target: "<= 300 ms",
        meets: v !== null && v <= 300,
      });
    }
  }
  if (vsOracle.length > 0) {
    const worst = vsOracle.reduce((a, b) => ((a[1] as number) <= (b[1] as number) ? a : b));
    figures.push({
      name: `worst scenario (${worst[0]}): weir served ÷ oracle served`,
      value: worst[1] as number,
      unit: "%",
      target: ">= 95 %",
      meets: (worst[1] as number) >= 95,
    });
    tables.unshift({
      title: "weir against the oracle and plain CFS, per scenario",
      columns: [
        "scenario",
        "weir served ÷ oracle served %",
        "p99: plain CFS ÷ weir (x)",
        "batch CPU weir",
        "batch CPU oracle",
      ],
      rows: vsOracle,
    });
  }
  notes.push(
    "Simulated: 1 ms ticks, CFS bandwidth (100 ms period, throttling, burst, refill on quota write), work-conserving cpu.shares sharing, the idle class (cpu.idle) and a wake-up wait behind a same-class hog (up to the kernel's 1.5 ms base slice) on 2 CPUs; Poisson arrivals; receive queue 1,000 packets; cost per packet drifting ±30 % for all partitions together.",
    "static weights: fixed cpu.weight by importance (1000/560/320/180/100 for importance 1-5), batch in the idle class, no caps: what an admin sets up once without a manager.",
    "Every policy runs inside weir's real Manager (src/manager/manager.ts) with the same sensors-shaped counters and the same actuator, which writes a cgroup value only when it changes.",
    "Capacity is all CPUs (reserve 0, weir's config default). VPA-style updates once a minute, so in a 90-120 s run it resizes once or twice.",
    "manager µs/cycle is process CPU time (user+system) around Manager.runCycle: sampling the sim's counters, the policy step and the writes.",
  );
  return { figures, tables, notes };
}

export const bench: Benchmark = {
  name: "scenarios",
  description:
    "weir vs plain CFS, static caps, static weights, VPA-style, Koordinator-style and an oracle on simulated load steps, ramps, square waves, flash crowds, a diurnal trace and a batch hog",
  async run(ctx) {
    const suite = runSuite(smallScenarios(ctx.quick), ctx.progress);
    return { name: "scenarios", ...summarise(suite) };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
