// A digest of everything weir's step shows, over many steps of many configurations: every
// directive, every decision (its `why` and its detail read), and every state (its record), as
// one SHA-256. Run it before and after a change to the step that must not change behaviour:
// the two digests must be equal.
//   npx tsx bench/policy-digest.ts            the policy in this checkout
//   npx tsx bench/policy-digest.ts ../other   the policy in another checkout (its src/policy)
// Not a benchmark (nothing is timed). The configurations cover the law's paths: every leftover
// mode, dead-bands on and off, the donor cap off, untrimmed and trimmed, the weight floor on
// and off, guarantees that exceed capacity, garbage readings, goal partitions near their goals
// (donors, receivers, misses two windows in a row), goals met in a share of cycles (their learnt
// margin), a spec list that changes mid-run (the state
// read by id) and states read back through their record (the state file's path).
import { createHash } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { PartitionSpec, Throughput } from "../src/core/model.ts";
import type * as KnobsModule from "../src/policy/knobs.ts";
import type * as TableModule from "../src/policy/table.ts";
import { seeded } from "../src/policy/test-fixtures.ts";
import type { PolicyKnobs, PolicyState, TableOutput } from "../src/policy/types.ts";
import type * as WeirModule from "../src/policy/weir.ts";
import { isMain } from "./harness.ts";

interface Config {
  name: string;
  n: number;
  seed: number;
  /** Capacity per partition, millicores (small: tiers contend; tiny: the mins do not fit). */
  capacityPerPartition: number;
  knobs: Partial<PolicyKnobs>;
  weightFloor: boolean;
  /** Read every state's record before the next step (the next step reads the record). */
  readRecord: boolean;
  /** Share of goal partitions. */
  goals: number;
}

const STEPS = 32;

function configs(): Config[] {
  const out: Config[] = [];
  const knobSets: Array<[string, Partial<PolicyKnobs>]> = [
    ["defaults", {}],
    ["share", { leftover: "share" }],
    ["idle", { leftover: "idle" }],
    ["no-bands", { deadbandFraction: 0, weightDeadbandFraction: 0 }],
    ["donor-off", { donorCapPeriodMs: 0 }],
    ["donor-untrimmed-500", { donorCapPeriodMs: 500, donorCapMarginFraction: 0.05 }],
    ["suppress-batch", { suppressBatchAfterCycles: 2, releaseBatchAfterCycles: 2 }],
    [
      "wide-bands",
      { deadbandFraction: 0.05, weightDeadbandFraction: 0.4, maxShrinkFractionPerCycle: 0.5 },
    ],
    ["goal-cycles", { goalCycleFraction: 0.99 }],
  ];
  const shapes: Array<[string, number, number, number]> = [
    // name, partitions, capacity per partition, share of goal partitions
    ["small-goals", 12, 150, 0.5],
    ["mid", 300, 180, 0.2],
    ["tight", 200, 40, 0.3],
    ["goal-heavy", 150, 120, 0.6],
    ["loose", 100, 900, 0.2],
  ];
  let seed = 1;
  for (const [kn, knobs] of knobSets)
    for (const [sn, n, cap, goals] of shapes) {
      seed++;
      out.push({
        name: `${sn}/${kn}`,
        n,
        seed,
        capacityPerPartition: cap,
        knobs,
        weightFloor: seed % 2 === 0,
        readRecord: seed % 3 === 0,
        goals,
      });
    }
  // a few larger fleets with the floor both ways
  for (const weightFloor of [false, true])
    out.push({
      name: `large/${weightFloor ? "floor" : "no-floor"}`,
      n: 3000,
      seed: 100 + +weightFloor,
      capacityPerPartition: 180,
      knobs: {},
      weightFloor,
      readRecord: false,
      goals: 0.2,
    });
  return out;
}

function fleet(n: number, rnd: () => number, goals: number, prefix = ""): PartitionSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const batch = rnd() < 0.1;
    const min = Math.floor(rnd() * 5) * 20;
    const s: PartitionSpec = {
      id: `${prefix}${batch ? "b" : "n"}${i}`,
      kind: batch ? "batch" : "network",
      minCpuMillis: min,
      maxCpuMillis: min + 200 + Math.floor(rnd() * 3800),
      weight: 1 + Math.floor(rnd() * 10),
      importance: (1 + Math.floor(rnd() * 5)) as PartitionSpec["importance"],
    };
    if (!batch && rnd() < goals) s.goalPacketsPerSec = 500 + Math.floor(rnd() * 5000);
    if (rnd() < 0.05) s.capped = true;
    return s;
  });
}

/** One cycle's windows, with regimes that reach every rule (and some garbage). */
function windows(
  specs: PartitionSpec[],
  velocity: number[],
  rnd: () => number,
  step: number,
): Map<string, Throughput> {
  const m = new Map<string, Throughput>();
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i]!;
    if (rnd() < 0.06) continue; // no data: held
    const v = velocity[i]! * (0.8 + rnd() * 0.4);
    const r = rnd();
    let offered: number;
    let served: number;
    if (s.kind === "batch") {
      offered = 0;
      served = 0;
    } else if (s.goalPacketsPerSec !== undefined && r < 0.7) {
      // near its goal: donor, receiver, held at it; some steps far below (a miss)
      const g = s.goalPacketsPerSec;
      const low = (step + i) % 7 < 2;
      served = g * (low ? 0.6 + rnd() * 0.3 : 0.9 + rnd() * 0.3);
      offered = served * (rnd() < 0.5 ? 1 : 1 + rnd());
    } else if (r < 0.05) {
      offered = 0;
      served = 0;
    } else {
      offered = 50 + rnd() * 3000 * (1 + ((step >> 3) & 1)); // load steps every 8 cycles
      served = offered * (rnd() < 0.4 ? 0.5 + rnd() * 0.5 : 1);
    }
    const throttled = rnd() < 0.3 ? 0.05 + rnd() * 0.9 : rnd() * 0.04;
    const tp: Throughput = {
      partition: s.id,
      windowMs: rnd() < 0.9 ? 100 : 500,
      offeredPacketsPerSec: offered,
      servedPacketsPerSec: served,
      droppedPacketsPerSec: rnd() < 0.12 ? Math.max(0, offered - served) + rnd() * 10 : 0,
      cpuCores: s.kind === "batch" ? rnd() * 2 : (served / v) * (0.8 + rnd() * 0.5),
      throttledFraction: throttled,
      rawVelocityPacketsPerCpuSec: rnd() < 0.05 ? null : v,
      source: "host",
    };
    if (rnd() < 0.6) tp.cpuDelayFraction = rnd();
    const g = rnd();
    if (g < 0.01) tp.cpuCores = Number.NaN;
    else if (g < 0.02) tp.offeredPacketsPerSec = -5;
    else if (g < 0.03) tp.servedPacketsPerSec = Number.POSITIVE_INFINITY;
    m.set(s.id, tp);
  }
  return m;
}

interface Modules {
  weir: typeof WeirModule;
  knobs: typeof KnobsModule;
  table: typeof TableModule;
}

/** How often each path of the law was taken (printed with --each: the digest's coverage). */
const paths = new Map<string, number>();
const saw = (what: string): void => {
  paths.set(what, (paths.get(what) ?? 0) + 1);
};

interface Detail {
  source: string;
  assessment: { kind: string; donor: boolean; goalReceiver: boolean; missesGoal: boolean } | null;
  receiver: boolean;
  yieldsTo: number | null;
  weightFloor: number | null;
  minCpuMillis: number;
  effectiveMinCpuMillis: number;
  deadband: boolean;
  shrinkLimited: boolean;
  boundsFixed: boolean;
  capCode: number;
  leftoverCpuMillis: number;
}

/** Every field of every row of one step's output, as one JSON text (read after the run). */
function seen(out: TableOutput): string {
  const rows: unknown[] = [];
  for (let i = 0; i < out.directives.size; i++) {
    const d = out.decisions.at(i) as unknown as { toJSON(): unknown; detail?: Detail };
    const x = d.detail;
    rows.push([out.directives.at(i), d.toJSON(), x ?? null]);
    if (!x) continue;
    saw(`source ${x.source}`);
    if (x.assessment) {
      saw(`kind ${x.assessment.kind}`);
      if (x.assessment.donor) saw("donor");
      if (x.assessment.goalReceiver) saw("goal receiver");
      if (x.assessment.missesGoal) saw("misses goal");
    }
    if (x.receiver) saw("receiver");
    if (x.yieldsTo !== null) saw("yields");
    if (x.weightFloor !== null) saw("weight floor");
    if (x.effectiveMinCpuMillis < x.minCpuMillis) saw("guarantee cut");
    if (x.deadband) saw("dead-band");
    if (x.shrinkLimited) saw("shrink-limited");
    if (x.boundsFixed) saw("bounds fixed");
    if (x.leftoverCpuMillis > 0) saw("left-over");
    saw(`cap code ${x.capCode}`);
  }
  return JSON.stringify([rows, out.state]);
}

function runConfig(c: Config, mods: Modules): string {
  const rnd = seeded(c.seed);
  let specs = fleet(c.n, rnd, c.goals);
  const velocity = specs.map(() => 2600 + rnd() * 2100);
  const knobs: PolicyKnobs = {
    ...mods.knobs.defaultPolicyKnobs(Math.max(300, c.n * c.capacityPerPartition)),
    ...c.knobs,
  };
  const policy = mods.weir.createWeirPolicy({ weightFloor: c.weightFloor });
  let state: PolicyState = policy.initialState();
  let table = mods.table.partitionTable(specs);
  const outs: TableOutput[] = [];
  const hash = createHash("sha256");
  for (let k = 0; k < STEPS; k++) {
    if (k === 12) {
      // the spec list changes: a fifth leaves, some join, order shuffled a little
      const kept = specs.filter(() => rnd() >= 0.2);
      const joined = fleet(Math.max(1, c.n >> 3), rnd, c.goals, `j${k}-`);
      specs = [
        ...joined.slice(0, joined.length >> 1),
        ...kept,
        ...joined.slice(joined.length >> 1),
      ];
      while (velocity.length < specs.length) velocity.push(2600 + rnd() * 2100);
      table = mods.table.partitionTable(specs);
    }
    const tp = windows(specs, velocity, rnd, k);
    const input =
      k % 5 === 4
        ? { nowMs: k * 100, knobs, table, throughput: mods.table.throughputColumnsOf(table, tp) }
        : (() => {
            const cols = mods.table.throughputColumns(table.size);
            for (let i = 0; i < table.size; i++) {
              const w = tp.get(table.ids[i]!);
              if (w) mods.table.setThroughput(cols, i, w);
            }
            return { nowMs: k * 100, knobs, table, throughput: cols };
          })();
    const out = policy.stepTable!(input, state);
    state = out.state;
    if (c.readRecord) hash.update(JSON.stringify(state));
    outs.push(out);
  }
  // read everything after the run, so the steps carried their packed state (unless readRecord)
  for (const out of outs) hash.update(seen(out));
  return hash.digest("hex");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const root = path.resolve(args[0] ?? path.join(import.meta.dirname, ".."));
  const at = (f: string) => pathToFileURL(path.join(root, "src/policy", f)).href;
  const mods: Modules = {
    weir: await import(at("weir.ts")),
    knobs: await import(at("knobs.ts")),
    table: await import(at("table.ts")),
  };
  const all = createHash("sha256");
  const list = configs();
  for (const c of list) {
    const d = runConfig(c, mods);
    all.update(d);
    if (process.argv.includes("--each")) process.stdout.write(`${c.name} ${d.slice(0, 16)}\n`);
  }
  if (process.argv.includes("--each"))
    for (const [what, count] of [...paths].sort()) process.stdout.write(`  ${what}: ${count}\n`);
  process.stdout.write(
    `policy digest of ${root}: ${list.length} configurations × ${STEPS} steps: ${all.digest("hex")}\n`,
  );
}

// bench/ modules are imported by the report to find the benchmarks: run only as a program
if (isMain(import.meta.url)) await main();
