// "Where weir loses, and why": from the simulated suites' repetitions, every measure on which a
// baseline beat weir in the median over seeds (with how many seeds it won, paired by seed), and
// the evidence from weir's own counters in the same runs. Nothing here is fixed text with a
// number filled in: each sentence is chosen by, and states, what was measured.
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import { DEADBAND_MAX_CPU_MILLIS, deadbandCpuMillis } from "../src/policy/weir.ts";
import type { RunMeasures, RunResult } from "../src/sim/measures.ts";
import { DIAGNOSTIC_DEADBAND_CPU_MILLIS, weirSmallDeadband } from "../src/sim/policies.ts";
import { stats } from "./harness.ts";
import {
  labelOf,
  measuresOf,
  policiesOf,
  type ScenarioRuns,
  type SuiteResult,
} from "./scenarios.ts";

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const med = (xs: number[]) => stats(xs)?.median ?? Number.NaN;
const medOf = (ms: RunMeasures[], f: (m: RunMeasures) => number) => med(ms.map(f));

/** Unused network allocation: mean over cycles of Σ(network caps) − Σ(network CPU used), cores; null when uncapped or no series. */
export function idleNetworkAllocationCores(r: RunResult): number | null {
  if (!r.series) return null;
  const parts = Object.values(r.series.partitions).filter((p) => p.kind === "network");
  const n = r.series.tMs.length;
  if (n === 0 || parts.some((p) => p.capCpuMillis.some((c) => c === null))) return null;
  let sum = 0;
  for (let i = 0; i < n; i++)
    for (const p of parts) sum += (p.capCpuMillis[i] ?? 0) - (p.cpuMillis[i] ?? 0);
  return sum / n / 1000;
}

/** In how many seeds `better(other, weir)` held, paired by seed. */
function wonIn(
  sr: ScenarioRuns,
  policy: string,
  better: (o: RunMeasures, w: RunMeasures) => boolean,
): string {
  let won = 0;
  let n = 0;
  for (const rep of sr.reps) {
    const w = rep.runs.find((r) => r.policy === "weir");
    const o = rep.runs.find((r) => r.policy === policy);
    if (!w || !o) continue;
    n++;
    if (better(o.measures, w.measures)) won++;
  }
  return `in ${won} of ${n} seeds`;
}

/**
 * Markdown lines: per scenario, each baseline that beat weir in the median (served ÷ offered,
 * p99 latency, batch CPU at equal service, cgroup writes at equal service), then what was
 * measured that explains it. Diagnostic variants of weir are used only as evidence.
 */
export function weirLosses(suites: SuiteResult[]): string[] {
  const out: string[] = [];
  for (const sr of suites.flatMap((s) => s.scenarios)) {
    const { scenario } = sr;
    const weir = measuresOf(sr, "weir");
    if (weir.length === 0) continue;
    const w = {
      served: medOf(weir, (m) => m.servedFraction),
      p99: medOf(weir, (m) => m.p99LatencyMs),
      batch: medOf(weir, (m) => m.batchCpuCores),
      net: medOf(weir, (m) => m.networkCpuCores),
      writes: medOf(weir, (m) => m.allocationWrites),
      throttled: medOf(weir, (m) => m.networkThrottledFraction),
      changes: medOf(weir, (m) => m.allocationChanges),
      cycles: medOf(weir, (m) => m.cycles),
      reaction: med(weir.flatMap((m) => (m.reactionMs === null ? [] : [m.reactionMs]))),
    };
    const items: string[] = [];
    const losses = { latency: false, batch: false, served: false };
    const batchMargin = 0.05 * Math.max(1, scenario.cpus / 10);
    for (const policy of policiesOf(sr)) {
      if (policy.startsWith("weir")) continue;
      const ms = measuresOf(sr, policy);
      const o = {
        served: medOf(ms, (m) => m.servedFraction),
        p99: medOf(ms, (m) => m.p99LatencyMs),
        batch: medOf(ms, (m) => m.batchCpuCores),
        net: medOf(ms, (m) => m.networkCpuCores),
        writes: medOf(ms, (m) => m.allocationWrites),
      };
      const wins: string[] = [];
      if (o.served - w.served > 0.005) {
        wins.push(
          `serves more (${pct(o.served)} vs ${pct(w.served)}, ${wonIn(sr, policy, (a, b) => a.servedFraction > b.servedFraction)})`,
        );
        losses.served = true;
      }
      if (o.p99 < w.p99 * 0.8 && w.p99 > 5) {
        wins.push(
          `lower p99 latency (${o.p99.toFixed(1)} vs ${w.p99.toFixed(1)} ms, ${wonIn(sr, policy, (a, b) => a.p99LatencyMs < b.p99LatencyMs)})`,
        );
        losses.latency = true;
      }
      const comparable = o.served >= w.served - 0.005;
      const equal = Math.abs(o.served - w.served) <= 0.005 ? "equal" : "better";
      if (comparable && o.batch - w.batch > batchMargin) {
        wins.push(
          `more CPU to the batch partitions at ${equal} service (${o.batch.toFixed(2)} vs ${w.batch.toFixed(2)} cores, ${wonIn(sr, policy, (a, b) => a.batchCpuCores > b.batchCpuCores)}; network partitions used ${o.net.toFixed(2)} vs weir's ${w.net.toFixed(2)} cores)`,
        );
        losses.batch = true;
      }
      if (comparable && w.writes > 5 * Math.max(1, o.writes))
        wins.push(
          `fewer cgroup writes at ${equal} service (${Math.round(o.writes)} vs ${Math.round(w.writes)})`,
        );
      if (wins.length > 0) items.push(`  - ${labelOf(policy)}: ${wins.join("; ")}.`);
    }
    if (scenario.reaction && Number.isFinite(w.reaction) && w.reaction > 300)
      items.push(
        `  - the budget: weir's reaction to the load step took ${Math.round(w.reaction)} ms in the median (budget 300 ms).`,
      );
    if (items.length === 0) continue;
    const why: string[] = [];
    const first = sr.reps[0]?.runs.find((r) => r.policy === "weir");
    const idle = first ? idleNetworkAllocationCores(first) : null;
    if (losses.batch && idle !== null)
      why.push(
        `weir's caps on network partitions exceeded what they used by ${idle.toFixed(2)} cores on average (seed 1)`,
      );
    if ((losses.latency || losses.served) && w.throttled > 0)
      why.push(
        `weir's network partitions were throttled in ${pct(w.throttled)} of their CFS periods (median): a burst above a cap waits for the next 100 ms period`,
      );
    const n = scenario.partitions.length;
    if (w.changes <= n * 1.05 && w.cycles > 10 && first) {
      const knobs = defaultPolicyKnobs(first.capacityCpuMillis);
      const diag = measuresOf(sr, weirSmallDeadband.name);
      why.push(
        `weir changed allocations ${Math.round(w.changes)} times over ${Math.round(w.cycles)} cycles × ${n} partitions (median): its dead-band is ${knobs.deadbandFraction * 100} % of capacity, at most ${DEADBAND_MAX_CPU_MILLIS} millicores = ${Math.round(deadbandCpuMillis(knobs))} millicores here, against an equal share of ${Math.round(first.capacityCpuMillis / n)} millicores${diag.length > 0 ? `. With a dead-band of ${DIAGNOSTIC_DEADBAND_CPU_MILLIS} millicores weir served ${pct(medOf(diag, (m) => m.servedFraction))} (p99 ${medOf(diag, (m) => m.p99LatencyMs).toFixed(1)} ms, batch ${medOf(diag, (m) => m.batchCpuCores).toFixed(2)} cores, ${Math.round(medOf(diag, (m) => m.allocationWrites))} writes)` : ""}`,
      );
    }
    out.push(
      `- **${scenario.name}** (simulated, median of ${sr.reps.length} seeds) — weir: served ${pct(w.served)}, p99 ${w.p99.toFixed(1)} ms, batch ${w.batch.toFixed(2)} cores, ${Math.round(w.writes)} writes. Better than weir:`,
      ...items,
      ...(why.length > 0 ? [`  - measured in weir's runs: ${why.join("; ")}.`] : []),
    );
  }
  return out;
}
