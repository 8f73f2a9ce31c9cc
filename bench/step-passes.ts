// The policy step's time per pass: weir's columnar step on policy-step's fleet (makeFleet, fresh
// windows each step from cycleColumns, the state carried from step to step), with the step's
// pass marker (weir.ts setStepPassMarker: a no-op unless set, as in production) taking the
// clock at the end of each pass. Prints, per size, the median over the steps of each pass's
// time, of the whole step, and how many steps ran the demand pass twice. Not a report
// benchmark: a where-does-it-go figure for a change to the step (run it under the bench lock).
//   node dist/bench/step-passes.js [steps] [sizes, comma-separated]
//   (default 300 steps at 10,000 and 100,000 partitions; 40 warm-up steps first)
// The markers' own cost (a clock read and a store per pass, nine a step) is in the figures:
// compare the whole step with policy-step-ab's or policy-step's, not with these sums.
import { partitionTable } from "../src/policy/table.ts";
import type { PolicyState } from "../src/policy/types.ts";
import { STEP_PASSES, type StepPass, setStepPassMarker, weirPolicy } from "../src/policy/weir.ts";
import { isMain, nowNs } from "./harness.ts";
import { cycleColumns, makeFleet } from "./policy-step.ts";

/** What one step's markers saw: its start, each pass's end in the order marked, its end (ns). */
export interface StepMarks {
  startNs: number;
  passes: readonly StepPass[];
  atNs: readonly number[];
  endNs: number;
}

/** The passes a report lists: the step's, then its output's objects (after the last pass). */
export const REPORTED = [...STEP_PASSES, "output"] as const;
export type Reported = (typeof REPORTED)[number];

/** Each marked pass's time (from the mark before it, or the start), and the output's (ns). */
export function passTimes(m: StepMarks): Partial<Record<Reported, number>> {
  const out: Partial<Record<Reported, number>> = {};
  let from = m.startNs;
  m.passes.forEach((p, k) => {
    out[p] = (out[p] ?? 0) + (m.atNs[k]! - from);
    from = m.atNs[k]!;
  });
  out.output = m.endNs - from;
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[s.length >> 1]!;
};

export interface PassSummary {
  steps: number;
  /** Median of the whole step, ns. */
  stepNs: number;
  /** Per pass: the median over the steps that ran it, ns, and how many did. */
  passes: Array<{ pass: Reported; medianNs: number; ran: number }>;
}

/** The medians of a run's steps, per pass (a pass that no step ran is left out). */
export function summarize(steps: readonly StepMarks[]): PassSummary {
  const times = steps.map(passTimes);
  const passes: PassSummary["passes"] = [];
  for (const pass of REPORTED) {
    const xs = times.flatMap((t) => (t[pass] === undefined ? [] : [t[pass]!]));
    if (xs.length > 0) passes.push({ pass, medianNs: median(xs), ran: xs.length });
  }
  return { steps: steps.length, stepNs: median(steps.map((s) => s.endNs - s.startNs)), passes };
}

/** `steps` timed steps (after 40 untimed) at `n` partitions, every pass marked. */
export function measurePasses(n: number, steps: number): PassSummary {
  const fleet = makeFleet(n);
  const table = partitionTable(fleet.specs);
  let state: PolicyState = weirPolicy.initialState();
  let cycle = 0;
  for (let i = 0; i < 40; i++)
    state = weirPolicy.stepTable!(cycleColumns(fleet, table, cycle++), state).state;
  const marks: StepMarks[] = [];
  let passes: StepPass[] = [];
  let atNs: number[] = [];
  setStepPassMarker((p) => {
    atNs.push(nowNs());
    passes.push(p);
  });
  try {
    for (let k = 0; k < steps; k++) {
      const input = cycleColumns(fleet, table, cycle++);
      passes = [];
      atNs = [];
      const startNs = nowNs();
      state = weirPolicy.stepTable!(input, state).state;
      const endNs = nowNs();
      marks.push({ startNs, passes, atNs, endNs });
    }
  } finally {
    setStepPassMarker(null);
  }
  return summarize(marks);
}

/** The summary as text lines (µs). */
export function formatSummary(n: number, s: PassSummary): string[] {
  const us = (ns: number): string => (ns / 1e3).toFixed(1).padStart(8);
  const lines = [`${n} partitions, ${s.steps} steps: step ${us(s.stepNs)} µs (median)`];
  for (const p of s.passes)
    lines.push(
      `  ${p.pass.padEnd(12)}${us(p.medianNs)} µs${p.ran === s.steps ? "" : `  (in ${p.ran} of ${s.steps} steps)`}`,
    );
  const sum = s.passes.filter((p) => p.ran === s.steps).reduce((acc, p) => acc + p.medianNs, 0);
  lines.push(`  ${"sum".padEnd(12)}${us(sum)} µs (medians of the passes every step ran)`);
  return lines;
}

function main(): void {
  const steps = Number(process.argv[2] ?? 300);
  const sizes = (process.argv[3] ?? "10000,100000").split(",").map(Number);
  for (const n of sizes) {
    const s = measurePasses(n, steps);
    process.stdout.write(`${formatSummary(n, s).join("\n")}\n`);
  }
}

// bench/ modules are imported by the report to find the benchmarks: run only as a program
if (isMain(import.meta.url)) main();
