// The CPU of the manager's cycle alone — sample → reports → step → apply → record, as
// `weir run` runs it — at 100 real idle cgroup v1 partitions: the real Manager, built by
// `buildManager` from `weir bench overhead`'s config (overhead.ts: each partition's cgroup and
// lo's packet counters, 100 ms cycles) with weir's policy, the real sensors and the real cgroup
// actuator, and the service's metrics attached (`createMetrics().attach`, the reader that folds
// every record), driven back to back in one process on a clock that advances 100 ms a cycle
// (so the sensors and the policy see 100 ms windows: an idle partition's CPU counters are read
// once every 10 cycles, as at 10 Hz). No HTTP API, no timers, no waiting between cycles: what
// `weir run` spends beyond this (the wake-up, the collector's helper thread, code gone cold
// between cycles) is overhead-ab.ts's to measure.
// Each repetition is a fresh process (the bin's node flags and environment, as `weir run`
// starts): a warm-up (default 3,000 cycles: the 600-record history full, the code compiled),
// then a plain pass of N cycles (default 6,000) timed by process.cpuUsage() and the wall clock
// before and after, then a phased pass of N more with the Manager's phase timer on the CPU clock
// (`timer` of ManagerParts reads process.cpuUsage(): the record's `timingsMs` are then CPU ms
// per phase) and the CPU clock read around each `runCycle`; what the call took beyond the
// record's total is the record phase. The phased pass costs seven clock reads a cycle more
// (their cost is printed); the plain pass is the figure. CPU is the process's: the main thread
// and V8's helper thread (the collector's concurrent work, the optimising compiler).
// `--build NAME=DIR` (repeatable) drives another checkout's Manager (DIR's dist/, built and
// current: the modules are imported from it), so two builds are compared in interleaved
// processes, the order rotating per round, with each round's difference; without it, this
// checkout's modules (the sources through tsx, or dist/ when run from there). `--profile DIR`
// adds a third pass of N cycles under V8's sampling profiler (node:inspector, a sample every
// 100 µs), kept as DIR/<build>-<round>.cpuprofile, and prints the functions with the most self
// time in each build's first profile (the passes measured before it are not profiled).
// `--reads` adds a pass of N cycles with `fs.readSync` wrapped (node:fs's export, what the
// sensors' held files call) and prints, per kind of file, the reads a cycle and the wall
// time around each (hrtime; a read preempted by other work counts long, so the median too).
// `--heap` adds a pass of N cycles under V8's sampling heap profiler (a sample every 512 bytes,
// objects the collectors freed included) and prints the JS heap bytes a cycle allocated, in all
// and by function: a count, so it holds on a busy machine where the CPU figures do not.
//   npx tsx bench/cycle-pipeline.ts [--reps N] [--warmup N] [--cycles N] [--partitions N]
//     [--build NAME=DIR ...] [--profile DIR] [--reads] [--heap] [--out FILE]
//   node dist/bench/cycle-pipeline.js [same]
// Needs root and cgroup v1's cpu and cpuacct hierarchies (/sys/fs/cgroup/{cpu,cpuacct}).
// Creates /sys/fs/cgroup/{cpu,cpuacct}/weir-cycle-pipeline-<pid>/pNNN and removes exactly
// those (and the parents) afterwards, also on an error, SIGINT or SIGTERM. Run it under the
// bench lock (`flock /tmp/weir-bench.lock …`): it times CPU. Figures go to
// docs/performance.md with the command, the date, the machine and the load.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { Session } from "node:inspector/promises";
import { syncBuiltinESMExports } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as Metrics from "../src/api/metrics.ts";
import type * as LoadConfig from "../src/manager/load-config.ts";
import type * as Wiring from "../src/manager/wiring.ts";
import { type CpuProfile, summarizeCpuProfile } from "./cpu-profile.ts";
import {
  allocationsByFunction,
  cpuMsOf,
  type FileReads,
  type HeapAllocations,
  type HeapProfileNode,
  PhaseTotals,
  type PipelineRun,
  parseBuildOption,
  positiveIntOption,
  RUN_LINE_PREFIX,
  readsByKind,
  runFromOutput,
  summarize,
} from "./cycle-pipeline-figures.ts";
import { isMain } from "./harness.ts";
import { overheadConfigYaml } from "./overhead.ts";
import { shebangCommand } from "./overhead-figures.ts";

const CGROUPFS = "/sys/fs/cgroup";
const HIERARCHIES = ["cpu", "cpuacct"] as const;
const SELF = fileURLToPath(import.meta.url);
/** The checkout this file belongs to (bench/ or dist/bench/ below it). */
const PACKAGE_DIR = path.resolve(
  path.dirname(SELF),
  path.basename(path.dirname(path.dirname(SELF))) === "dist" ? "../.." : "..",
);

// ---- one repetition (a child process) ------------------------------------------------------

/** A module of `code` (a checkout's dist/), or of this checkout when null (tsx or dist/). */
function moduleUrl(code: string | null, rel: string): string {
  if (code !== null) return pathToFileURL(path.join(code, "dist", "src", `${rel}.js`)).href;
  return new URL(`../src/${rel}${SELF.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;
}

async function child(argv: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0 || argv[i + 1] === undefined) throw new Error(`cycle-pipeline child: no ${name}`);
    return argv[i + 1]!;
  };
  const code = argv.includes("--code") ? opt("--code") : null;
  const cgroups = opt("--cgroups").split(",");
  const warmup = Number(opt("--warmup"));
  const cycles = Number(opt("--cycles"));
  const { parseConfigText } = (await import(
    moduleUrl(code, "manager/load-config")
  )) as typeof LoadConfig;
  const { buildManager } = (await import(moduleUrl(code, "manager/wiring"))) as typeof Wiring;
  const { createMetrics } = (await import(moduleUrl(code, "api/metrics"))) as typeof Metrics;

  // the API's address is never served here; the config is overhead's as `weir run` reads it
  const cfg = parseConfigText(overheadConfigYaml(cgroups, 9470), "cycle-pipeline");
  let clockMs = performance.timeOrigin + performance.now();
  let phased = false;
  const cpuMs = () => cpuMsOf(process.cpuUsage());
  const { manager } = buildManager(cfg, {
    now: () => clockMs,
    timer: () => (phased ? cpuMs() : 0),
  });
  createMetrics().attach(manager);
  const cycle = () => {
    clockMs += cfg.intervalMs;
    return manager.runCycle();
  };
  try {
    for (let i = 0; i < warmup; i++) cycle();

    const u0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    for (let i = 0; i < cycles; i++) cycle();
    const wallNs = Number(process.hrtime.bigint() - w0);
    const plainMs = cpuMsOf(process.cpuUsage(u0));

    phased = true;
    const totals = new PhaseTotals();
    let last = null;
    for (let i = 0; i < cycles; i++) {
      const before = cpuMs();
      last = cycle();
      totals.add(last.timingsMs, cpuMs() - before);
    }
    phased = false;
    const { total, phases } = totals.perCycleUs();

    const clockReads = 20_000;
    const c0 = process.cpuUsage();
    let sink = 0;
    for (let i = 0; i < clockReads; i++) sink += cpuMs();
    const clockReadUs = (cpuMsOf(process.cpuUsage(c0)) * 1000) / clockReads;
    if (!Number.isFinite(sink)) throw new Error("cycle-pipeline: the CPU clock read NaN");

    let reads: FileReads[] | undefined;
    if (argv.includes("--reads")) {
      const seen: Array<{ fd: number; ns: number }> = [];
      const readSync = fs.readSync;
      fs.readSync = ((fd: number, ...rest: unknown[]) => {
        const t = process.hrtime.bigint();
        try {
          return (readSync as (...a: unknown[]) => number)(fd, ...rest);
        } finally {
          seen.push({ fd, ns: Number(process.hrtime.bigint() - t) });
        }
      }) as typeof fs.readSync;
      syncBuiltinESMExports();
      try {
        for (let i = 0; i < cycles; i++) cycle();
      } finally {
        fs.readSync = readSync;
        syncBuiltinESMExports();
      }
      // the descriptors are the sensors' held ones, open still: their paths from /proc
      const pathOf = new Map<number, string>();
      const named = seen.map(({ fd, ns }) => {
        let file = pathOf.get(fd);
        if (file === undefined) {
          try {
            file = fs.readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            file = "(a descriptor closed since)";
          }
          pathOf.set(fd, file);
        }
        return { file, ns };
      });
      reads = readsByKind(named, cycles);
    }

    if (argv.includes("--profile")) {
      const session = new Session();
      session.connect();
      try {
        await session.post("Profiler.enable");
        await session.post("Profiler.setSamplingInterval", { interval: 100 });
        await session.post("Profiler.start");
        for (let i = 0; i < cycles; i++) cycle();
        const { profile } = await session.post("Profiler.stop");
        fs.writeFileSync(
          path.join(opt("--profile"), `${opt("--build")}-${opt("--round")}.cpuprofile`),
          JSON.stringify(profile),
        );
      } finally {
        session.disconnect();
      }
    }

    let heap: HeapAllocations | undefined;
    if (argv.includes("--heap")) {
      const session = new Session();
      session.connect();
      try {
        await session.post("HeapProfiler.enable");
        // a sample every 512 bytes; the objects minor and major collections freed are kept in it
        await session.post("HeapProfiler.startSampling", {
          samplingInterval: 512,
          includeObjectsCollectedByMinorGC: true,
          includeObjectsCollectedByMajorGC: true,
        });
        for (let i = 0; i < cycles; i++) cycle();
        const { profile } = await session.post("HeapProfiler.stopSampling");
        heap = allocationsByFunction(profile.head as HeapProfileNode, cycles);
      } finally {
        session.disconnect();
      }
    }

    const status = last?.columns?.status ?? last?.partitions.map((p) => p.status) ?? [];
    const run: PipelineRun = {
      build: opt("--build"),
      round: Number(opt("--round")),
      cycles,
      cpuUsPerCycle: (plainMs * 1000) / cycles,
      wallUsPerCycle: wallNs / 1000 / cycles,
      phasedCpuUsPerCycle: total,
      phaseCpuUs: phases,
      clockReadUs,
      partitionsOk: status.filter((s) => s === "ok").length,
      partitions: cgroups.length,
      ...(reads ? { reads } : {}),
      ...(heap ? { heap } : {}),
    };
    process.stdout.write(`${RUN_LINE_PREFIX}${JSON.stringify(run)}\n`);
  } finally {
    manager.shutdown("restore");
  }
}

// ---- the repetitions (the parent) -----------------------------------------------------------

interface Build {
  name: string;
  /** A checkout whose dist/ the child imports; null: this checkout's modules. */
  dir: string | null;
}

/** Refuses a checkout whose dist/ is missing or older than its sources. */
async function checkBuilt(dir: string): Promise<void> {
  const statusFile = path.join(dir, "scripts", "dist-status.js");
  if (!fs.existsSync(statusFile)) throw new Error(`cycle-pipeline: ${dir} is not a weir checkout`);
  const { distStatus } = (await import(pathToFileURL(statusFile).href)) as {
    distStatus(root: string): { current: boolean; reason?: string };
  };
  const s = distStatus(dir);
  if (!s.current) throw new Error(`cycle-pipeline: ${dir}: ${s.reason} (npm run build there)`);
}

function runChild(
  build: Build,
  round: number,
  cgroups: readonly string[],
  o: {
    warmup: number;
    cycles: number;
    profileDir: string | null;
    reads: boolean;
    heap: boolean;
  },
  onSpawn: (kill: () => void) => void,
): Promise<PipelineRun> {
  // the bin's node flags and environment, as `weir run` starts (after tsx's, when under tsx)
  const bin = shebangCommand(fs.readFileSync(path.join(PACKAGE_DIR, "bin", "weir.js"), "utf8"));
  const args = [
    ...process.execArgv,
    ...bin.nodeFlags,
    SELF,
    "--child",
    "--build",
    build.name,
    "--round",
    String(round),
    "--cgroups",
    cgroups.join(","),
    "--warmup",
    String(o.warmup),
    "--cycles",
    String(o.cycles),
    ...(build.dir === null ? [] : ["--code", build.dir]),
    ...(o.profileDir === null ? [] : ["--profile", o.profileDir]),
    ...(o.reads ? ["--reads"] : []),
    ...(o.heap ? ["--heap"] : []),
  ];
  const c = spawn(process.execPath, args, {
    env: { ...process.env, ...bin.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onSpawn(() => c.kill("SIGKILL"));
  let out = "";
  let err = "";
  c.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  c.stderr.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    c.once("error", reject);
    c.once("exit", (code, signal) => {
      const run = runFromOutput(out);
      if (code === 0 && run) resolve(run);
      else
        reject(
          new Error(
            `cycle-pipeline: ${build.name}, round ${round}: exited ${code ?? signal}: ${err}`,
          ),
        );
    });
  });
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--child")) return child(argv);
  if (process.getuid?.() !== 0) throw new Error("cycle-pipeline: needs root (it makes cgroups)");
  for (const h of HIERARCHIES)
    if (!fs.existsSync(path.join(CGROUPFS, h, "cgroup.procs")))
      throw new Error(`cycle-pipeline: needs cgroup v1's ${h} hierarchy at ${CGROUPFS}/${h}`);
  const reps = positiveIntOption(argv, "--reps", 5);
  const warmup = positiveIntOption(argv, "--warmup", 3000);
  const cycles = positiveIntOption(argv, "--cycles", 6000);
  const partitions = positiveIntOption(argv, "--partitions", 100);
  const profIdx = argv.indexOf("--profile");
  const profileDir = profIdx >= 0 ? path.resolve(argv[profIdx + 1] ?? ".") : null;
  if (profileDir !== null) fs.mkdirSync(profileDir, { recursive: true });
  const outIdx = argv.indexOf("--out");
  const outFile =
    outIdx >= 0 ? argv[outIdx + 1]! : path.join(os.tmpdir(), "weir-cycle-pipeline.json");
  const builds: Build[] = argv
    .flatMap((a, i) => (a === "--build" ? [parseBuildOption(argv[i + 1] ?? "")] : []))
    .map((b) => ({ name: b.name, dir: path.resolve(b.dir) }));
  if (new Set(builds.map((b) => b.name)).size !== builds.length)
    throw new Error("cycle-pipeline: two builds have the same name");
  for (const b of builds) await checkBuilt(b.dir!);
  if (builds.length === 0) builds.push({ name: "this", dir: null });

  const parent = `weir-cycle-pipeline-${process.pid}`;
  const cgroups = Array.from({ length: partitions }, (_, i) =>
    path.join(parent, `p${String(i).padStart(3, "0")}`),
  );
  // what this run made, in the order made: removed in reverse
  const made: string[] = [];
  let killChild: (() => void) | null = null;
  const cleanup = () => {
    killChild?.();
    for (const dir of made.splice(0).reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch (e) {
        process.stderr.write(`cycle-pipeline: could not remove ${dir}: ${(e as Error).message}\n`);
      }
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.exit(sig === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const load0 = os.loadavg();
  const t0 = new Date();
  const runs: PipelineRun[] = [];
  try {
    for (const h of HIERARCHIES) {
      for (const dir of [parent, ...cgroups].map((c) => path.join(CGROUPFS, h, c))) {
        fs.mkdirSync(dir);
        made.push(dir);
      }
    }
    for (let round = 0; round < reps; round++) {
      const order = builds.map((_, i) => builds[(i + round) % builds.length]!);
      for (const b of order) {
        const run = await runChild(
          b,
          round,
          cgroups,
          {
            warmup,
            cycles,
            profileDir,
            reads: argv.includes("--reads"),
            heap: argv.includes("--heap"),
          },
          (k) => {
            killChild = k;
          },
        );
        killChild = null;
        runs.push(run);
        process.stderr.write(`${JSON.stringify(run)}\n`);
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanup();
  }
  const load1 = os.loadavg();
  const header = `cycle-pipeline: ${partitions} idle cgroup v1 partitions, ${reps} rounds of a fresh process per build, ${warmup} cycles of warm-up, ${cycles} measured (twice); ${t0.toISOString().slice(11, 16)}–${new Date().toISOString().slice(11, 16)} UTC, load ${load0[0]!.toFixed(2)} → ${load1[0]!.toFixed(2)} (${os.cpus().length} × ${os.cpus()[0]?.model ?? "CPU"})`;
  const lines = [
    header,
    ...summarize(
      runs,
      builds.map((b) => b.name),
    ),
    ...builds.map(
      (b) => `  ${b.name}: ${b.dir === null ? `this checkout (${SELF})` : `${b.dir}/dist`}`,
    ),
  ];
  if (profileDir !== null)
    for (const b of builds) {
      const file = path.join(profileDir, `${b.name}-0.cpuprofile`);
      const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
      const sum = summarizeCpuProfile(prof, { top: 25 });
      lines.push(
        `${b.name}: self time in the profiled pass of round 0 (${sum.busyMs.toFixed(0)} ms busy in ${sum.windowMs.toFixed(0)} ms, ${((sum.busyMs * 1000) / cycles).toFixed(1)} µs a cycle; ${file}):`,
        ...sum.rows.map(
          (r) =>
            `  ${((r.selfMs * 1000) / cycles).toFixed(1).padStart(6)} µs ${(r.share * 100).toFixed(1).padStart(5)} %  ${r.fn}`,
        ),
      );
    }
  fs.writeFileSync(outFile, JSON.stringify({ header, runs }, null, 2));
  process.stdout.write(`${lines.join("\n")}\n(runs in ${outFile})\n`);
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
