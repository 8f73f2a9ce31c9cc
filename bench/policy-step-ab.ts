// A quick A/B of weir's columnar step between two builds (each checkout's compiled dist/):
// interleaved processes, each timing the step at the given sizes on policy-step's fleet and
// printing its median and 10th percentile; then the median of each side's medians, and of its
// 10th percentiles (steadier than the median while other work runs beside the lock: a step
// that was preempted or shared its core lands in the upper half, not in the fastest tenth). Not a report benchmark: a
// before/after check for a change to the step (run it under the bench lock).
//   node dist/bench/policy-step-ab.js <before checkout> <after checkout> [reps] [steps]
//   (built first in both: npm run build)
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
