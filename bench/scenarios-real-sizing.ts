// scenarios-real's scenarios (loads in cores, turned into packets/s by the probe's rate), the
// outcome of one run, and the note that says, from the runs' own counters, why the hog
// scenario's plain CFS ÷ weir p99 ratio is what it is (pure; scenarios-real.ts runs the testbed).
import type { Schedule } from "../src/testbed/schedule.ts";
import { stats } from "./harness.ts";

interface RealScenario {
  name: string;
  description: string;
  durationMs: number;
  schedules: Record<string, Schedule>;
  stepAtMs?: number;
}

/**
 * Run lengths. Each run was 40 s, so 5 repetitions of 6 policies × 2 scenarios took 40 min;
 * they are 16 s (hog) and 18 s (step: 6 s before the step, 12 s after) so 5 repetitions fit in
 * about 20 min. What a row shows is unchanged: every loop in the comparison (weir's 100 ms
 * cycle, Koordinator-style's and VPA-style 60×'s 1-s loops) acts 16 times or more in each
 * run, and after the step 12 or more times; the step stays a third of the way in. The runs'
 * start (before a policy first acts) and the step's transient are a larger share of a shorter
 * run's packets, for every policy alike.
 */
export const REAL_RUN_MS = { hog: 16_000, step: 18_000, stepAt: 6_000, quick: 12_000 };

/**
 * Loads in cores (fractions of one CPU), turned into packets/s by the probe's saturation rate
 * at the start, as conservation-real does. The hog scenario is the simulated one's (0.23, 0.34,
 * 0.8 CPU): c needs more than the half of a CPU an equal CFS share of 2 CPUs among the
 * testbed's four groups gives it, which is what the p99 budget is about. The step keeps the
 * cores its fixed rates stood for when they were chosen (400 -> 2,500 and 600 packets/s at
 * about 3,500 packets per CPU-second). Until 2026-12-02 the rates were those fixed packets/s;
 * the server got cheaper per request since, and the same rates then needed a third of that.
 */
export const REAL_CORES = {
  hog: { a: 0.23, b: 0.34, c: 0.8 },
  step: { from: 0.11, to: 0.71, others: 0.17 },
};
/** The hog scenario's rates before they were sized from the probe (see REAL_CORES). */
export const FIXED_HOG_PPS = { a: 600, b: 1000, c: 2200 };

export function realScenarios(quick: boolean, ppsPerCore: number): RealScenario[] {
  const hogMs = quick ? REAL_RUN_MS.quick : REAL_RUN_MS.hog;
  const stepMs = quick ? REAL_RUN_MS.quick : REAL_RUN_MS.step;
  const stepAtMs = quick ? Math.round(REAL_RUN_MS.quick / 3) : REAL_RUN_MS.stepAt;
  const pps = (cores: number) => Math.max(20, Math.round(cores * ppsPerCore));
  const n = (x: number) => x.toLocaleString("en-US");
  const { hog, step } = REAL_CORES;
  return [
    {
      name: "hog",
      description: `steady ${n(pps(hog.a))}, ${n(pps(hog.b))}, ${n(pps(hog.c))} packets/s (${hog.a}, ${hog.b}, ${hog.c} of a CPU at the probed rate) with a 2-thread batch hog; c needs more than an equal CFS share`,
      durationMs: hogMs,
      schedules: {
        a: { kind: "constant", pps: pps(hog.a) },
        b: { kind: "constant", pps: pps(hog.b) },
        c: { kind: "constant", pps: pps(hog.c) },
      },
    },
    {
      name: "step",
      description: `a steps ${n(pps(step.from))} -> ${n(pps(step.to))} packets/s (${step.from} -> ${step.to} of a CPU) a third of the way in; b, c at ${n(pps(step.others))}; a 2-thread batch hog`,
      durationMs: stepMs,
      stepAtMs,
      schedules: {
        a: { kind: "step", fromPps: pps(step.from), toPps: pps(step.to), atMs: stepAtMs },
        b: { kind: "constant", pps: pps(step.others) },
        c: { kind: "constant", pps: pps(step.others) },
      },
    },
  ];
}

export interface RealOutcome {
  /** Answered ÷ sent over all partitions. */
  served: number;
  /** Answered ÷ sent per partition (a, b, c). */
  servedBy: number[];
  /** Sent ÷ what the schedules asked for, over all partitions (below 1: the generator fell behind). */
  sentOfScheduled: number;
  lost: number;
  p99s: number[];
  worstP99: number;
  hogCores: number;
  writes: number;
  generatorCores: number;
  /** CPU each partition's cgroup used over the run, cores (a, b, c). */
  cpuCores: number[];
  /** Mean over the run's cycles and the network partitions of CPU delay, 0..1 (NaN: not read). */
  netCpuDelay: number;
  /** Share of cycles in which the policy hard-capped the hog, 0..1. */
  hogCappedFraction: number;
  /** Mean weight the policy applied to each partition (a, b, c) over the run's cycles (v2 scale). */
  weights: number[];
}

const med = (xs: number[]): number => stats(xs)?.median ?? Number.NaN;
const f2 = (x: number) => x.toFixed(2);
const f1 = (x: number) => x.toFixed(1);

/** One policy's hog-scenario medians, as a clause. */
function state(o: RealOutcome[], partition: number, name: string): string {
  return (
    `c used ${f2(med(o.map((x) => x.cpuCores[partition] ?? Number.NaN)))} cores, ` +
    `served ${f1(med(o.map((x) => (x.servedBy[partition] ?? Number.NaN) * 100)))} % of what it was sent, ` +
    `p99 c ${f1(med(o.map((x) => x.p99s[partition] ?? Number.NaN)))} ms; ` +
    `the network partitions' CPU delay ${f1(med(o.map((x) => x.netCpuDelay * 100)))} % (${name})`
  );
}

/**
 * Why the hog scenario's ratio is what it is: what plain CFS left c beside the hog (the CPUs
 * minus what the generator, a and b used, split evenly between c and the hog at equal
 * cpu.shares), what c was offered, and what c used, served and waited under each; then what
 * the fixed rates the scenario once had would have needed at this run's probed rate.
 */
export function hogRatioWhy(input: {
  cpus: number;
  saturationPps: number;
  /** Cores each of a, b, c was offered (the scenario's sizing). */
  offeredCores: number[];
  /** The rates in packets/s the scenario had before it was sized from the probe. */
  fixedPps: number[];
  weir: RealOutcome[];
  none: RealOutcome[];
  ratio: { median: number; min: number; max: number } | null;
}): string[] {
  const { weir, none } = input;
  if (weir.length === 0 || none.length === 0 || !input.ratio) return [];
  const c = input.offeredCores.length - 1;
  const gen = med(none.map((x) => x.generatorCores));
  const others = med(none.map((x) => x.cpuCores.slice(0, c).reduce((s, v) => s + v, 0)));
  const left = (input.cpus - gen - others) / 2;
  const offeredC = input.offeredCores[c]!;
  const r = input.ratio;
  const lines = [
    `Why plain CFS ÷ weir is ${f1(r.median)}× [${f1(r.min)}–${f1(r.max)}] in the hog scenario (medians over repetitions): under plain CFS the generator used ${f2(gen)} cores and a and b ${f2(others)} together, which leaves c and the hog, at equal cpu.shares, (${input.cpus} − ${f2(gen)} − ${f2(others)}) ÷ 2 = ${f2(left)} cores each; c was offered ${offeredC} cores, ${offeredC > left ? "more" : "no more"} than that. Plain CFS: ${state(none, c, `hog ${f2(med(none.map((x) => x.hogCores)))} cores`)}. weir: ${state(weir, c, `hog ${f2(med(weir.map((x) => x.hogCores)))} cores, hard-capped in ${f1(med(weir.map((x) => x.hogCappedFraction * 100)))} % of cycles`)}.`,
  ];
  lines.push(worstPartitionWhy(weir, none));
  const fixedCores = input.fixedPps.map((p) => p / input.saturationPps);
  const fixedC = fixedCores[c]!;
  lines.push(
    `At this run's probed rate (${Math.round(input.saturationPps)} requests/s per core) the fixed rates the hog scenario had before it was sized in cores (${input.fixedPps.join(", ")} packets/s) are ${fixedCores.map(f2).join(", ")} cores, ${f2(fixedCores.reduce((s, v) => s + v, 0))} together: c's ${f2(fixedC)} is ${fixedC > left ? "more" : "less"} than the ${f2(left)} cores plain CFS left it here${fixedC > left ? "" : ", so at those rates plain CFS held no partition below its load and the ratio measured only the hog's effect on wake-ups, which conservation-real measures for every policy"}.`,
  );
  return lines;
}

const NAMES = ["a", "b", "c"];

/**
 * The ratio divides the worst partition's p99 under plain CFS by the worst one's under weir,
 * and a p99 is over answered packets only: which partition was worst under each (medians), what
 * each served, and the weights weir set against plain CFS's.
 */
export function worstPartitionWhy(weir: RealOutcome[], none: RealOutcome[]): string {
  const p99 = (o: RealOutcome[]) => NAMES.map((_, i) => med(o.map((x) => x.p99s[i] ?? Number.NaN)));
  const worst = (xs: number[]) => xs.indexOf(Math.max(...xs));
  const [pw, pn] = [p99(weir), p99(none)];
  const [ww, wn] = [worst(pw), worst(pn)];
  const served = (o: RealOutcome[]) =>
    NAMES.map((_, i) => f1(med(o.map((x) => (x.servedBy[i] ?? Number.NaN) * 100)))).join(" / ");
  const weights = (o: RealOutcome[]) =>
    NAMES.map((_, i) => Math.round(med(o.map((x) => x.weights[i] ?? Number.NaN)))).join(" : ");
  const ms = (xs: number[]) => xs.map(f1).join(" / ");
  return (
    `The ratio divides each repetition's worst partition p99 under plain CFS by weir's, and a p99 counts answered packets only (a packet with no reply within 1 s is lost, not in it): ` +
    `a / b / c served ${served(none)} % of what they were sent under plain CFS and ${served(weir)} % under weir; ` +
    `their p99 was ${ms(pn)} ms under plain CFS (worst: ${NAMES[wn]}) and ${ms(pw)} ms under weir (worst: ${NAMES[ww]}), ` +
    `with weights a : b : c of ${weights(none)} under plain CFS and ${weights(weir)} under weir (mean applied, median over repetitions).`
  );
}
