// A quick A/B of weir's columnar step between two builds (each checkout's compiled dist/):
// interleaved processes, each timing the step at the given sizes on policy-step's fleet and
// printing its median and 10th percentile; then the median of each side's medians, and of its
// 10th percentiles (steadier than the median while other work runs beside the lock: a step
// that was preempted or shared its core lands in the upper half, not in the fastest tenth). Not a report benchmark: a
// before/after check for a change to the step (run it under the bench lock).
//   node dist/bench/policy-step-ab.js <before checkout> <after checkout> [reps] [steps]
//   (built first in both: npm run build)
//   node dist/bench/policy-step-ab.js --paired <before checkout> <after checkout> [steps]
//   both builds in one process, stepped in turn on the same fresh inputs (each build's own
//   fleet from the same seed, so both see the same windows), the order swapped every step, the
//   ratio second-loaded ÷ first-loaded taken per step (median over 400 steps at 10,000, an
//   eighth of it at 100,000). It runs two such processes, one loading before first and one
//   after first, and prints after ÷ before = √(r₁ ÷ r₂) with the order's own effect √(r₁ · r₂)
//   (1.00 ± 0.01 between two checkouts of the same code, 2026-12-03). The two checkouts must
//   differ: one checkout on both sides shares its modules, whose code then serves both (1.07,
//   not a null). A paired ratio holds on a busy machine where the interleaved processes'
//   medians do not: both sides share each moment's load.
//   node dist/bench/policy-step-ab.js --profile <checkout> [steps]
//   prints the top self time of `steps` steps (default 300) at 10,000 partitions (policy-step's
//   profile, on that checkout's build)
import { spawnSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isMain } from "./harness.ts";

const SIZES = [10_000, 100_000];

/** One side, in a process of its own: the median and the 10th-percentile step at each size, ns. */
async function child(root: string, steps: number): Promise<void> {
  const at = (f: string) => pathToFileURL(path.join(root, "dist", f)).href;
  const ps = await import(at("bench/policy-step.js"));
  const { weirPolicy } = await import(at("src/policy/weir.js"));
  const { partitionTable } = await import(at("src/policy/table.js"));
  const out: number[] = [];
  for (const n of SIZES) {
    const fleet = ps.makeFleet(n);
    const table = partitionTable(fleet.specs);
    let state = weirPolicy.initialState();
    let cycle = 0;
    for (let i = 0; i < 40; i++)
      state = weirPolicy.stepTable(ps.cycleColumns(fleet, table, cycle++), state).state;
    const times: number[] = [];
    const count = n >= 100_000 ? Math.max(10, steps >> 3) : steps;
    for (let k = 0; k < count; k++) {
      const input = ps.cycleColumns(fleet, table, cycle++);
      const t0 = process.hrtime.bigint();
      state = weirPolicy.stepTable(input, state).state;
      times.push(Number(process.hrtime.bigint() - t0));
    }
    times.sort((x, y) => x - y);
    out.push(times[times.length >> 1]!, times[Math.floor(times.length / 10)]!);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** One `--paired` process: per size, the median per step of second-loaded ÷ first-loaded. */
async function pairedChild(roots: [string, string], steps: number): Promise<void> {
  const sides = await Promise.all(
    roots.map(async (root) => {
      const at = (f: string) => pathToFileURL(path.join(root, "dist", f)).href;
      return {
        ps: await import(at("bench/policy-step.js")),
        policy: (await import(at("src/policy/weir.js"))).weirPolicy,
        partitionTable: (await import(at("src/policy/table.js"))).partitionTable,
      };
    }),
  );
  const out: number[] = [];
  for (const n of SIZES) {
    const runs = sides.map((s) => {
      const fleet = s.ps.makeFleet(n);
      return { s, fleet, table: s.partitionTable(fleet.specs), state: s.policy.initialState() };
    });
    let cycle = 0;
    const stepOne = (r: (typeof runs)[number], c: number): number => {
      const input = r.s.ps.cycleColumns(r.fleet, r.table, c);
      const t0 = process.hrtime.bigint();
      r.state = r.s.policy.stepTable(input, r.state).state;
      return Number(process.hrtime.bigint() - t0);
    };
    for (let i = 0; i < 40; i++, cycle++) for (const r of runs) stepOne(r, cycle);
    const count = n >= 100_000 ? Math.max(10, steps >> 3) : steps;
    const ratios: number[] = [];
    for (let k = 0; k < count; k++, cycle++) {
      const ns = [0, 0];
      for (const side of k % 2 === 0 ? [0, 1] : [1, 0]) ns[side] = stepOne(runs[side]!, cycle);
      ratios.push(ns[1]! / ns[0]!);
    }
    ratios.sort((x, y) => x - y);
    out.push(ratios[ratios.length >> 1]!);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * after ÷ before and the order's own effect from the two orders' medians (r₁: after ÷ before with
 * before loaded first; r₂: before ÷ after with after loaded first).
 */
export function pairedRatio(r1: number, r2: number): { ratio: number; orderEffect: number } {
  return { ratio: Math.sqrt(r1 / r2), orderEffect: Math.sqrt(r1 * r2) };
}

/** `--paired`: the two orders in two processes (see the head). */
function paired(before: string, after: string, steps: number): void {
  const run = (first: string, second: string): number[] => {
    const r = spawnSync(
      process.execPath,
      [process.argv[1]!, "--paired-child", first, second, String(steps)],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as number[];
  };
  const r1 = run(before, after);
  const r2 = run(after, before);
  SIZES.forEach((n, j) => {
    const { ratio, orderEffect } = pairedRatio(r1[j]!, r2[j]!);
    process.stdout.write(
      `${n}: after ÷ before ${ratio.toFixed(3)} (before loaded first ${r1[j]!.toFixed(3)}, after loaded first ${(1 / r2[j]!).toFixed(3)}; order effect ${orderEffect.toFixed(3)})\n`,
    );
  });
}

async function profile(root: string, steps: number): Promise<void> {
  const ps = await import(pathToFileURL(path.join(root, "dist/bench/policy-step.js")).href);
  const p = await ps.profileSteps(10_000, steps);
  process.stdout.write(`${steps} steps of 10,000 partitions, ${p.busyMs.toFixed(0)} ms sampled\n`);
  for (const r of p.rows as Array<{ fn: string; selfMs: number; share: number }>)
    process.stdout.write(
      `${(r.share * 100).toFixed(1).padStart(5)} %  ${r.selfMs.toFixed(1).padStart(7)} ms  ${r.fn}\n`,
    );
}

const ms = (ns: number): string => (ns / 1e6).toFixed(3);

function main(): void {
  const [a, b, repsArg, stepsArg] = process.argv.slice(2);
  if (process.argv[2] === "--profile") {
    void profile(process.argv[3]!, Number(process.argv[4] ?? 300));
    return;
  }
  if (process.argv[2] === "--paired") {
    const [, , , before, after, stepsOpt] = process.argv;
    if (!before || !after)
      throw new Error("usage: policy-step-ab.js --paired <before> <after> [steps]");
    if (path.resolve(before) === path.resolve(after))
      throw new Error("--paired: two different checkouts (one on both sides shares its modules)");
    paired(path.resolve(before), path.resolve(after), Number(stepsOpt ?? 400));
    return;
  }
  if (process.argv[2] === "--paired-child") {
    void pairedChild([process.argv[3]!, process.argv[4]!], Number(process.argv[5]));
    return;
  }
  if (process.argv[2] === "--child") {
    void child(process.argv[3]!, Number(process.argv[4]));
    return;
  }
  if (!a || !b) throw new Error("usage: policy-step-ab.js <before> <after> [reps] [steps]");
  const reps = Number(repsArg ?? 5);
  const steps = Number(stepsArg ?? 200);
  const sides = [path.resolve(a), path.resolve(b)];
  // per side, per repetition: [median, p10] at each size, in SIZES order
  const medians: number[][][] = [[], []];
  for (let rep = 0; rep < reps; rep++)
    for (let k = 0; k < 2; k++) {
      const side = rep % 2 === 0 ? k : 1 - k; // alternate which side goes first
      const r = spawnSync(
        process.execPath,
        [process.argv[1]!, "--child", sides[side]!, String(steps)],
        { encoding: "utf8" },
      );
      if (r.status !== 0) throw new Error(r.stderr);
      const m = JSON.parse(r.stdout) as number[];
      medians[side]!.push(m);
      process.stdout.write(
        `rep ${rep + 1} ${side === 0 ? "before" : "after "}: ${SIZES.map((n, j) => `${n}: ${ms(m[2 * j]!)} ms (p10 ${ms(m[2 * j + 1]!)})`).join(", ")}\n`,
      );
    }
  for (let side = 0; side < 2; side++)
    process.stdout.write(
      `${side === 0 ? "before" : "after "} ${sides[side]}: ${SIZES.map((n, j) => {
        const of = (k: number): string => {
          const xs = medians[side]!.map((m) => m[2 * j + k]!).sort((x, y) => x - y);
          return `${ms(xs[xs.length >> 1]!)} ms [${ms(xs[0]!)}–${ms(xs.at(-1)!)}]`;
        };
        return `${n}: ${of(0)}, p10 ${of(1)}`;
      }).join(", ")}\n`,
    );
}

// bench/ modules are imported by the report to find the benchmarks: run only as a program
if (isMain(import.meta.url)) main();
