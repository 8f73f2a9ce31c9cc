// Benchmark: one step of weir's workload policy for 10 … 100,000 partitions.
// Inputs are varied like a real fleet: five importance levels, 10 % batch, weights 1–10,
// goals on a fifth, velocities drifting ±30 % cycle to cycle, a third of the partitions
// throttled, some dropping, 5 % with no throughput this cycle, and capacity short of demand
// so every tier is water-filled. The state is carried from step to step as the manager does.
import type { PartitionSpec, Throughput } from "../src/core/model.ts";
import { defaultPolicyKnobs } from "../src/policy/knobs.ts";
import type { PolicyInput, PolicyState } from "../src/policy/types.ts";
import { weirPolicy } from "../src/policy/weir.ts";
import {
  type BenchFigure,
  type Benchmark,
  isMain,
  nowNs,
  runStandalone,
  timePerIterationNs,
} from "./harness.ts";

/** Small deterministic PRNG (mulberry32) so every run sees the same fleet. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cycles of distinct inputs the benchmark rotates through. */
const CYCLES = 8;

export function makeFleet(n: number, seed = 1): { inputs: PolicyInput[]; specs: PartitionSpec[] } {
  const rnd = prng(seed);
  const specs: PartitionSpec[] = [];
  for (let i = 0; i < n; i++) {
    const batch = rnd() < 0.1;
    const min = Math.floor(rnd() * 5) * 20; // 0..80m
    specs.push({
      id: `${batch ? "batch" : "net"}-${i.toString(36)}`,
      minCpuMillis: min,
      maxCpuMillis: min + 200 + Math.floor(rnd() * 3800),
      weight: 1 + Math.floor(rnd() * 10),
      importance: (1 + Math.floor(rnd() * 5)) as PartitionSpec["importance"],
      kind: batch ? "batch" : "network",
      ...(rnd() < 0.2 ? { goalPacketsPerSec: 500 + Math.floor(rnd() * 5000) } : {}),
    });
  }
  // Demand averages ~300m a partition; capacity covers about 60 % of it.
  const knobs = defaultPolicyKnobs(Math.max(2000, n * 180));
  const baseVelocity = specs.map(() => 2600 + rnd() * 2100);
  const inputs: PolicyInput[] = [];
  for (let c = 0; c < CYCLES; c++) {
    const throughput = new Map<string, Throughput>();
    for (let i = 0; i < n; i++) {
      const s = specs[i]!;
      if (rnd() < 0.05) continue; // no data this cycle
      const velocity = baseVelocity[i]! * (0.7 + rnd() * 0.6);
      const offered = s.kind === "batch" ? 0 : 100 + rnd() * 2000;
      const throttled = rnd() < 0.33 ? 0.05 + rnd() * 0.9 : rnd() * 0.04;
      const served = offered * (throttled > 0.05 ? 0.5 + rnd() * 0.5 : 1);
      const dropped = rnd() < 0.1 ? offered - served : 0;
      const cpuCores = s.kind === "batch" ? rnd() * 2 : served / velocity;
      throughput.set(s.id, {
        partition: s.id,
        windowMs: 100,
        offeredPacketsPerSec: offered,
        servedPacketsPerSec: served,
        droppedPacketsPerSec: dropped,
        cpuCores,
        throttledFraction: throttled,
        rawVelocityPacketsPerCpuSec: rnd() < 0.05 ? null : velocity,
        source: "host",
      });
    }
    inputs.push({ nowMs: c * 100, knobs, specs, throughput });
  }
  return { inputs, specs };
}

const SIZES = [10, 100, 1_000, 10_000, 100_000];

function format(ns: number): { value: number; unit: string } {
  if (ns >= 1e6) return { value: Math.round(ns / 1e4) / 100, unit: "ms" };
  return { value: Math.round(ns / 10) / 100, unit: "µs" };
}

export const bench: Benchmark = {
  name: "policy-step",
  description: "weir policy step for 10 to 100,000 partitions (target ≤ 1 ms at 10,000)",
  async run(ctx) {
    const figures: BenchFigure[] = [];
    const rows: Array<Array<string | number>> = [];
    const sizes = ctx.quick ? SIZES.slice(0, 4) : SIZES;
    const perN: number[] = [];
    for (const [k, n] of sizes.entries()) {
      ctx.progress(k / sizes.length, `${n} partitions`);
      const { inputs } = makeFleet(n);
      let state: PolicyState = weirPolicy.initialState();
      let c = 0;
      const step = (): void => {
        const out = weirPolicy.step(inputs[c % CYCLES]!, state);
        state = out.state;
        c++;
      };
      // Warm up past the first cycles (empty state, every partition new).
      for (let i = 0; i < 2 * CYCLES; i++) step();
      const minMs = ctx.quick ? 100 : n >= 100_000 ? 1500 : 500;
      const ns = timePerIterationNs(step, { minMs, minIters: 10 });
      perN.push(ns);
      const f = format(ns);
      figures.push({
        name: `step, ${n.toLocaleString("en-US")} partitions`,
        value: f.value,
        unit: f.unit,
        ...(n === 10_000 ? { target: "<= 1 ms", meets: ns <= 1e6 } : {}),
      });

      // What a reader pays on top: every `why` sentence and the state record (state file).
      const out = weirPolicy.step(inputs[c % CYCLES]!, state);
      let t0 = nowNs();
      let chars = 0;
      for (const d of out.decisions) chars += d.why.length;
      const whyNs = nowNs() - t0;
      t0 = nowNs();
      chars += JSON.stringify(out.state).length;
      const recordNs = nowNs() - t0;
      rows.push([
        n,
        format(ns).value + " " + format(ns).unit,
        `${Math.round(ns / n)} ns`,
        format(whyNs).value + " " + format(whyNs).unit,
        format(recordNs).value + " " + format(recordNs).unit,
      ]);
      if (chars === 0) throw new Error("no output read");
    }
    ctx.progress(1, "done");
    const notes: string[] = [];
    const i10k = sizes.indexOf(10_000);
    const i100k = sizes.indexOf(100_000);
    if (i10k >= 0 && i100k >= 0) {
      const ratio = perN[i100k]! / perN[i10k]!;
      const nlogn = (1e5 * Math.log2(1e5)) / (1e4 * Math.log2(1e4));
      notes.push(
        `100,000 vs 10,000 partitions: ×${ratio.toFixed(1)} (N log N would be ×${nlogn.toFixed(1)}, N ×10)`,
      );
    }
    notes.push(
      "step = directives + decisions + state; `why` sentences and the state record are built when first read (columns 4-5: one-off cost of reading them all)",
    );
    return {
      name: "policy-step",
      figures,
      tables: [
        {
          title: "policy step",
          columns: ["partitions", "step", "per partition", "read every why", "state record (JSON)"],
          rows,
        },
      ],
      notes,
    };
  },
};

if (isMain(import.meta.url) && !process.env.WEIR_BENCH_NO_MAIN) {
  const result = await runStandalone(bench);
  if (!process.argv.includes("--json"))
    for (const t of result.tables ?? []) {
      process.stdout.write(`  ${t.columns.join(" | ")}\n`);
      for (const r of t.rows) process.stdout.write(`  ${r.join(" | ")}\n`);
    }
}
