// The p99 ratio with the hog ÷ without, from the requests of every repetition pooled: each
// partition's p99 over all its requests with the hog (every repetition's measured window
// together) over its p99 over all its requests in the same repetitions' no-hog references.
//
// Why beside the per-repetition median: a repetition's ratio divides one 6 s run's p99 by
// another's, and a 6 s run's p99 is set by its slowest ~1 % of requests — a few bursts. On this
// testbed the no-hog reference's UDP p99 moved 3× across five repetitions, so the repetitions'
// ratios spread from 0.75× to 1.65× for the same policy. The pooled p99 is the percentile the
// target names ("a partition's p99 with the hog"), estimated from five times the requests;
// repetitions stay interleaved, so drift on the host falls on both sides alike. Its range is
// the jackknife's: the same ratio with each repetition left out in turn, which shows how much
// one repetition moves it.
import { pooledLatency } from "../src/testbed/load-stats.ts";
import type { RunOutcome } from "./conservation-run.ts";
import type { BenchFigure } from "./harness.ts";

export interface PooledRatio {
  /** Worst partition's pooled p99 with the hog ÷ its pooled p99 without. */
  value: number;
  /** The same with each repetition left out in turn: [min, max]; null with under 3 repetitions. */
  leaveOneOut: [min: number, max: number] | null;
  /** Repetitions pooled (those with both a run and its reference, each with histograms). */
  reps: number;
  /** Per partition: pooled p99 with and without the hog, ms. */
  perPartition: Record<string, { withMs: number; withoutMs: number }>;
}

/** What pooling reads of a run: its repetition and its partitions' histograms. */
export type PooledRun = Pick<RunOutcome, "rep" | "latencyB64">;

/** The runs paired with their repetition's reference, both with every partition's histogram. */
function paired(
  runs: readonly PooledRun[],
  refs: readonly PooledRun[],
  partitions: readonly string[],
): Array<[PooledRun, PooledRun]> {
  const has = (o: PooledRun) => partitions.every((n) => o.latencyB64?.[n] !== undefined);
  const out: Array<[PooledRun, PooledRun]> = [];
  for (const r of runs) {
    const ref = refs.find((x) => x.rep === r.rep);
    if (ref && has(r) && has(ref)) out.push([r, ref]);
  }
  return out;
}

function worstOf(
  pairs: ReadonlyArray<[PooledRun, PooledRun]>,
  partitions: readonly string[],
): { worst: number; perPartition: PooledRatio["perPartition"] } {
  const perPartition: PooledRatio["perPartition"] = {};
  let worst = Number.NEGATIVE_INFINITY;
  for (const n of partitions) {
    const withMs = pooledLatency(pairs.map(([r]) => r.latencyB64![n]!)).p99Ms ?? Number.NaN;
    const withoutMs = pooledLatency(pairs.map(([, f]) => f.latencyB64![n]!)).p99Ms ?? Number.NaN;
    perPartition[n] = { withMs, withoutMs };
    const ratio = withMs / withoutMs;
    // a NaN (no request answered on one side) makes the worst NaN: no verdict from half a pair
    worst = Number.isNaN(ratio) || Number.isNaN(worst) ? Number.NaN : Math.max(worst, ratio);
  }
  return { worst, perPartition };
}

/**
 * The worst partition's pooled p99 ratio of `runs` (one policy, one scenario) to `refs` (the
 * no-hog references of the same repetitions); null when no repetition has histograms.
 */
export function pooledWorstRatio(
  runs: readonly PooledRun[],
  refs: readonly PooledRun[],
  partitions: readonly string[],
): PooledRatio | null {
  const pairs = paired(runs, refs, partitions);
  if (pairs.length === 0) return null;
  const all = worstOf(pairs, partitions);
  let leaveOneOut: PooledRatio["leaveOneOut"] = null;
  if (pairs.length >= 3) {
    const xs = pairs.map(
      (_, i) =>
        worstOf(
          pairs.filter((_, j) => j !== i),
          partitions,
        ).worst,
    );
    leaveOneOut = [Math.min(...xs), Math.max(...xs)];
  }
  return { value: all.worst, leaveOneOut, reps: pairs.length, perPartition: all.perPartition };
}

/** A pooled ratio in a table cell: "1.03 [0.94–1.33]" (with its leave-one-out range), "–" for none. */
export function fmtPooled(p: PooledRatio | null): string {
  if (p === null) return "–";
  const range = p.leaveOneOut
    ? ` [${p.leaveOneOut[0].toFixed(2)}–${p.leaveOneOut[1].toFixed(2)}]`
    : "";
  return `${p.value.toFixed(2)}${range}`;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * A pooled ratio as a figure (none for null): its value, the repetitions pooled and the
 * leave-one-out range; `target` puts the 1.2× latency target on it.
 */
export function pooledFigure(name: string, p: PooledRatio | null, target: boolean): BenchFigure[] {
  if (p === null) return [];
  return [
    {
      name,
      value: r2(p.value),
      reps: p.reps,
      ...(p.leaveOneOut ? { range: [r2(p.leaveOneOut[0]), r2(p.leaveOneOut[1])] } : {}),
      unit: "x",
      ...(target ? { target: "<= 1.2", meets: p.value <= 1.2 } : {}),
    },
  ];
}
