// Memory at scale: what the manager's cycle history holds with 100 and 10,000 partitions, with
// the byte bound (historyMaxBytes, default 4 MiB) and without it (600 records, as before the
// bound). Each configuration runs in a fresh process (repetitions interleaved): the real Manager
// and weir's policy over the simulator's partitions (src/sim: its sensors and cgroups stand in
// for 10,000 real ones), cycles until the history is in its steady state, then two full GCs and
// /proc/self/status. A history of one record, same partitions and cycles, is the baseline: the
// difference is what the history holds, set beside estimateRecordBytes' figure for it.
// Run: weir bench memory-scale [--quick] [--reps N]   (or: npx tsx bench/memory-scale.ts [--json])
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { DEFAULT_HISTORY_MAX_BYTES, estimateRecordBytes } from "../src/manager/history.ts";
import { buildManager } from "../src/manager/wiring.ts";
import { throughputFromSamples } from "../src/sensors/throughput.ts";
import { configOf } from "../src/sim/run.ts";
import { scaleScenario } from "../src/sim/scenarios.ts";
import { SimWorld } from "../src/sim/world.ts";
import {
  type BenchFigure,
  type Benchmark,
  fmtStats,
  isMain,
  repeated,
  runStandalone,
  stats,
} from "./harness.ts";

export interface MemoryConfig {
  label: string;
  partitions: number;
  /** Records at most (the manager's default is 600). */
  maxRecords: number;
  /** Bytes at most (Infinity: no byte bound, as before historyMaxBytes). */
  maxBytes: number;
  cycles: number;
}

export interface MemoryRun {
  label: string;
  rssMb: number;
  /** JS heap used + external + array buffers after two full GCs, MB. */
  heapMb: number;
  records: number;
  /** Σ estimateRecordBytes of the records kept, MB. */
  estimatedMb: number;
  cycleMs: number;
}

const MB = 2 ** 20;
/** The default bound as the labels show it ("4 MiB"). */
const DEFAULT_BOUND = `${DEFAULT_HISTORY_MAX_BYTES / MB} MiB`;

/** The configurations, the baselines (history of one record) beside the ones they measure. */
export function memoryConfigs(quick: boolean): MemoryConfig[] {
  const small = quick ? 200 : 640; // 600 records fill, 40 more cycles
  const big = quick ? 12 : 40; // the byte bound keeps the latest record of 10,000 partitions
  const bigUnbounded = quick ? 12 : 40; // 40 records of 10,000 partitions: ~270 MB, and growing
  return [
    {
      label: "100 partitions, 1 record (baseline)",
      partitions: 100,
      maxRecords: 1,
      maxBytes: Number.POSITIVE_INFINITY,
      cycles: small,
    },
    {
      label: "100 partitions, 600 records, no byte bound",
      partitions: 100,
      maxRecords: 600,
      maxBytes: Number.POSITIVE_INFINITY,
      cycles: small,
    },
    {
      label: `100 partitions, default bound (${DEFAULT_BOUND})`,
      partitions: 100,
      maxRecords: 600,
      maxBytes: DEFAULT_HISTORY_MAX_BYTES,
      cycles: small,
    },
    {
      label: "10,000 partitions, 1 record (baseline)",
      partitions: 10_000,
      maxRecords: 1,
      maxBytes: Number.POSITIVE_INFINITY,
      cycles: big,
    },
    {
      label: `10,000 partitions, default bound (${DEFAULT_BOUND})`,
      partitions: 10_000,
      maxRecords: 600,
      maxBytes: DEFAULT_HISTORY_MAX_BYTES,
      cycles: big,
    },
    {
      label: `10,000 partitions, no byte bound, after ${bigUnbounded} cycles`,
      partitions: 10_000,
      maxRecords: 600,
      maxBytes: Number.POSITIVE_INFINITY,
      cycles: bigUnbounded,
    },
  ];
}

/** In the child: run one configuration and measure it. */
function measureHere(cfg: MemoryConfig): MemoryRun {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const scenario = scaleScenario(cfg.partitions, true);
  // A coarse tick: the world's fidelity does not change what a record holds.
  const world = new SimWorld({ cpus: scenario.cpus, tickMs: 50, seed: scenario.seed });
  for (const p of scenario.partitions) {
    if (p.kind === "network")
      world.addNetwork(p.id, {
        load: p.load ?? (() => 0),
        velocityPacketsPerCpuSec: p.velocityPacketsPerCpuSec ?? 3500,
        parallelism: 2,
      });
    else world.addBatch(p.id, { parallelism: 2 });
  }
  const { manager } = buildManager(configOf(scenario), {
    now: world.now,
    onlineCpus: scenario.cpus,
    actuators: { cgroup: world.hypervisor },
    openSensor: (p) => world.sensor(p.name),
    hostCpu: null,
    throughput: (id, prev, next) => throughputFromSamples(id, prev, next, "sim"),
    historySize: cfg.maxRecords,
    historyMaxBytes: cfg.maxBytes,
  });
  const t0 = performance.now();
  for (let c = 0; c < cfg.cycles; c++) {
    manager.runCycle();
    world.advance(scenario.intervalMs);
  }
  const cycleMs = (performance.now() - t0) / cfg.cycles;
  gc();
  gc();
  const m = process.memoryUsage();
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  const records = manager.recentRecords();
  return {
    label: cfg.label,
    rssMb: rssKb / 1024,
    // `external` already counts ArrayBuffers (the step's typed columns a record keeps)
    heapMb: (m.heapUsed + m.external) / MB,
    records: records.length,
    estimatedMb: records.reduce((s, r) => s + estimateRecordBytes(r), 0) / MB,
    cycleMs,
  };
}

/** In the parent: one configuration in a fresh process. */
function measureInChild(cfg: MemoryConfig): Promise<MemoryRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), "--child", JSON.stringify(cfg)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    child.once("exit", (code) => {
      if (code !== 0)
        reject(new Error(`bench memory-scale: ${cfg.label}: exit ${code}: ${err.trim()}`));
      else resolve(JSON.parse(out.trim().split("\n").at(-1)!) as MemoryRun);
    });
  });
}

export const bench: Benchmark = {
  name: "memory-scale",
  description:
    "memory the cycle history holds at 100 and 10,000 partitions, with the byte bound (historyMaxBytes) and without it",
  async run(ctx) {
    const reps = ctx.reps ?? (ctx.quick ? 1 : 5);
    const configs = memoryConfigs(ctx.quick);
    const runs: MemoryRun[] = [];
    const total = reps * configs.length;
    for (let rep = 0; rep < reps; rep++)
      for (const cfg of configs) {
        ctx.progress(runs.length / total, `rep ${rep + 1}/${reps}: ${cfg.label}`);
        runs.push(await measureInChild(cfg));
      }
    const of = (label: string) => runs.filter((r) => r.label === label);
    const med = (xs: number[]) => stats(xs)?.median ?? Number.NaN;
    const baselineOf = (cfg: MemoryConfig) =>
      configs.find((c) => c.partitions === cfg.partitions && c.maxRecords === 1)!;
    /** What the history holds over its baseline, MB (medians), and the records that adds. */
    const heldOf = (cfg: MemoryConfig) => {
      const mine = of(cfg.label);
      const base = of(baselineOf(cfg).label);
      return {
        mb: med(mine.map((r) => r.heapMb)) - med(base.map((r) => r.heapMb)),
        records: mine[0]!.records - base[0]!.records,
      };
    };
    const rows = configs.map((cfg) => {
      const mine = of(cfg.label);
      const held = heldOf(cfg);
      const isBase = cfg.maxRecords === 1;
      return [
        cfg.label,
        fmtStats(
          mine.map((r) => r.rssMb),
          1,
        ),
        fmtStats(
          mine.map((r) => r.heapMb),
          1,
        ),
        mine[0]!.records,
        isBase ? "-" : held.mb.toFixed(1),
        mine[0]!.estimatedMb.toFixed(1),
        isBase || held.records <= 0
          ? "-"
          : Math.round((held.mb * MB) / (held.records * cfg.partitions)),
        med(mine.map((r) => r.cycleMs)).toFixed(1),
      ];
    });
    const rssFigure = (cfg: MemoryConfig, name: string): BenchFigure => {
      return {
        name,
        ...repeated(
          of(cfg.label).map((r) => r.rssMb),
          1,
        ),
        unit: "MB",
      };
    };
    const [, unbounded100, bounded100, , bounded10k, unbounded10k] = configs as [
      MemoryConfig,
      MemoryConfig,
      MemoryConfig,
      MemoryConfig,
      MemoryConfig,
      MemoryConfig,
    ];
    const kept10k = of(bounded10k.label)[0]!.records;
    const estimated10k = of(bounded10k.label)[0]!.estimatedMb;
    const heldBig = heldOf(unbounded10k);
    // measured per record × the records kept: per record from the unbounded run over its
    // baseline (the bounded one keeps a record or two, too few to measure on their own)
    const history10kMb =
      heldBig.records > 0 ? (heldBig.mb / heldBig.records) * kept10k : Number.NaN;
    const held100 = heldOf(bounded100);
    const kept100 = of(bounded100.label)[0]!.records;
    const history100Mb =
      held100.records > 0 ? (held100.mb / held100.records) * kept100 : Number.NaN;
    const bytesPerPartitionRecord =
      heldBig.records > 0 ? (heldBig.mb * MB) / heldBig.records / 10_000 : Number.NaN;
    return {
      name: "memory-scale",
      figures: [
        rssFigure(
          bounded10k,
          `RSS, 10,000 partitions, history at its default bound (${DEFAULT_BOUND})`,
        ),
        {
          name: `history at 10,000 partitions, default bound: ${kept10k} record${kept10k === 1 ? "" : "s"} × measured MB per record (heap over the 1-record baseline in the run without a byte bound, medians of ${reps}); estimated ${estimated10k.toFixed(1)} MB`,
          value: Math.round(history10kMb * 10) / 10,
          unit: "MB",
          // the newest record always stays, so a record larger than the bound is kept alone
          target: `<= ${DEFAULT_BOUND}, or the latest record alone`,
          meets: kept10k === 1 || history10kMb <= DEFAULT_HISTORY_MAX_BYTES / MB,
        },
        {
          name: `history at 100 partitions, default bound: ${kept100} records × measured MB per record (heap over the 1-record baseline, medians of ${reps}); estimated ${of(bounded100.label)[0]!.estimatedMb.toFixed(1)} MB`,
          value: Math.round(history100Mb * 10) / 10,
          unit: "MB",
          target: `<= ${DEFAULT_BOUND}`,
          meets: history100Mb <= DEFAULT_HISTORY_MAX_BYTES / MB,
        },
        rssFigure(
          unbounded10k,
          `RSS, 10,000 partitions, no byte bound, ${unbounded10k.cycles} records (600 would be ×${(600 / unbounded10k.cycles).toFixed(0)} the history)`,
        ),
        rssFigure(bounded100, "RSS, 100 partitions, history at its default bound"),
        rssFigure(unbounded100, "RSS, 100 partitions, 600 records, no byte bound"),
      ],
      tables: [
        {
          title: `process memory after two full GCs, ${reps} repetitions per configuration (fresh process each, interleaved): median [min–max]`,
          columns: [
            "configuration",
            "VmRSS, MB",
            "heap + external, MB",
            "records kept",
            "history, measured MB (heap over the baseline)",
            "history, estimated MB (estimateRecordBytes)",
            "measured bytes per partition per record",
            "cycle ms (sim, mean)",
          ],
          rows,
        },
      ],
      notes: [
        "The real Manager and weir's policy; the partitions are the simulator's (src/sim: sensors and cgroups in memory), so RSS includes the simulator and is not the footprint of `weir run` (bench overhead measures that at 100 real cgroups). The baseline (a history of one record, same partitions and cycles) is subtracted for the history's own size.",
        `Without the byte bound a history grows to 600 records whatever the partition count: at 10,000 partitions about ${((600 * 10_000 * bytesPerPartitionRecord) / 1e9).toFixed(1)} GB by the ${Math.round(bytesPerPartitionRecord)} bytes per partition per record measured here — past V8's default heap limit (${(v8.getHeapStatistics().heap_size_limit / MB).toFixed(0)} MB here), so that configuration runs only ${unbounded10k.cycles} cycles.`,
        `Load average (1 min) ${os.loadavg()[0]!.toFixed(2)} at the end, ${os.cpus().length} CPUs.`,
      ],
    };
  },
};

if (isMain(import.meta.url)) {
  const i = process.argv.indexOf("--child");
  if (i >= 0) {
    const cfg = JSON.parse(process.argv[i + 1]!) as MemoryConfig;
    if (cfg.maxBytes === null) cfg.maxBytes = Number.POSITIVE_INFINITY; // JSON has no Infinity
    process.stdout.write(`${JSON.stringify(measureHere(cfg))}\n`);
  } else await runStandalone(bench);
}
