// Overhead of `weir run` as it ships: the package's bin (bin/weir.js, executed as a program, so
// node starts with the flags of its first line) running `weir run` on 100
// real idle cgroup v1 partitions at 10 cycles/s, HTTP API and metrics on, as a deployment runs
// it. Two runtimes, interleaved per repetition: the compiled JavaScript in dist/ (what the bin
// runs when dist/ is current) and the TypeScript sources through tsx (WEIR_FROM_SOURCE=1, what
// the bin ran before there was a build). Each run is a fresh process measured from outside:
// CPU from /proc/<pid>/stat (utime + stime) over a window after a warm-up, VmRSS and VmHWM from
// /proc/<pid>/status at the window's end, cycle time from its own weir_cycle_duration_seconds.
// Then one compiled run more under `node --cpu-prof`: the functions with the most self time
// over the same window (what bounds the CPU figure).
// Needs root, cgroup v1 (cpu + cpuacct) and a current dist/ (`npm run build`). Creates
// /sys/fs/cgroup/{cpu,cpuacct}/weirb-<pid>-NNN and removes them afterwards, also on
// SIGINT/SIGTERM.
// What a run measures and the figures per runtime are in overhead-figures.ts, the profile's
// arithmetic in cpu-profile.ts.
// Run: weir bench overhead [--quick] [--reps N]
//  or: npx tsx bench/overhead.ts [--json] [--quick] [--reps N]
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ErrorCodes, WeirError } from "../src/core/errors.ts";
import { packageFileUrl } from "../src/core/package-files.ts";
import { DEFAULT_HISTORY_SIZE } from "../src/manager/history.ts";
import { LazySourceMaps } from "../src/service/source-maps.ts";
import {
  type CpuProfile,
  monotonicUs,
  type ProfileSummary,
  summarizeCpuProfile,
} from "./cpu-profile.ts";
import type { BenchFigure, Benchmark } from "./harness.ts";
import { fmtStats, isMain, runStandalone } from "./harness.ts";
import {
  INTERVAL_MS,
  type OverheadRun,
  PARTITIONS,
  parseProcCpuTicks,
  parseProcMemoryMb,
  parseRunCounts,
  RUNTIMES,
  type Runtime,
  round,
  runtimeFigures,
  shebangCommand,
} from "./overhead-figures.ts";
import { spawnAgents, stopAgents } from "./udp-agents.ts";

const CGROUPFS = "/sys/fs/cgroup";
const BIN = fileURLToPath(packageFileUrl("bin/weir.js"));
/** The environment and node flags bin/weir.js's first line gives. */
const BIN_COMMAND = shebangCommand(fs.readFileSync(BIN, "utf8"));
const BIN_NODE_FLAGS = BIN_COMMAND.nodeFlags;
/**
 * Warm-up before the window: until the manager's cycle history is full (600 records at 10 Hz:
 * 60 s) and 5 s more, so VmRSS is the steady state's (after 23 s it was ~25 MB lower here).
 */
export const WARMUP_MS = DEFAULT_HISTORY_SIZE * INTERVAL_MS + 5000;
/** Where the profiled run's whole profile is kept. */
const PROFILE_COPY = path.join(os.tmpdir(), "weir-overhead.cpuprofile");
/** The line bin/weir.js prints when it falls back to the sources. */
export const FALLBACK_NOTICE = "running the TypeScript sources through tsx";

const readCpuTicks = (pid: number) =>
  parseProcCpuTicks(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
const readMemoryMb = (pid: number) =>
  parseProcMemoryMb(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on now (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The agents' key (every partition's, in the agents' configuration). */
export const AGENT_KEY_HEX = "a5".repeat(32);

/**
 * The config `weir run` gets: 100 partitions on the bench's cgroups, lo's packet counters; with
 * `agentsUdpPort`, fed by their agents over UDP instead (`packets: agent`, each its place in the
 * list as its index, every one AGENT_KEY_HEX), the manager's report socket on that port.
 */
export function overheadConfigYaml(
  cgroups: readonly string[],
  port: number,
  agentsUdpPort?: number,
): string {
  const agents = agentsUdpPort !== undefined;
  return [
    `intervalMs: ${INTERVAL_MS}`,
    "onShutdown: restore",
    "api:",
    `  listen: 127.0.0.1:${port}`,
    ...(agents ? ["transport:", "  udp:", `    listen: 127.0.0.1:${agentsUdpPort}`] : []),
    "partitions:",
    ...cgroups.flatMap((cg, i) => [
      `  - name: p${String(i).padStart(3, "0")}`,
      `    cgroup: ${cg}`,
      ...(agents
        ? ["    packets: agent", "    agent:", `      key: ${AGENT_KEY_HEX}`]
        : // Real packet counters on every partition: lo's line of /proc/net/dev (a veth's
          // counters are read the same way).
          ["    interfaces: [lo]"]),
    ]),
    "",
  ].join("\n");
}

/** A UDP port on loopback nobody is bound to now (bound, then released). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One `weir run` from the bin: start, warm up, measure, stop (SIGTERM, values restored). */
async function measureRun(
  runtime: Runtime,
  configFile: string,
  port: number,
  timing: { warmupMs: number; measureMs: number },
  progress: (f: number) => void,
  nodeArgs: readonly string[] = [],
  /** The "agents" runtime's: the manager's report port the agents send to. */
  udpPort = 0,
): Promise<OverheadRun & { windowUs: [number, number] }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (runtime === "tsx") env.WEIR_FROM_SOURCE = "1";
  else delete env.WEIR_FROM_SOURCE;
  const t0 = performance.now();
  // The bin executed as a program, as an installed `weir` runs: its first line starts node with
  // its environment and flags. A run with node flags of its own (the profiled one) starts node
  // with the bin's environment and flags and those.
  const args = ["run", "-c", configFile];
  const child: ChildProcess =
    nodeArgs.length === 0
      ? spawn(BIN, args, { env, stdio: ["ignore", "ignore", "pipe"] })
      : spawn(process.execPath, [...BIN_NODE_FLAGS, ...nodeArgs, BIN, ...args], {
          env: { ...env, ...BIN_COMMAND.env },
          stdio: ["ignore", "ignore", "pipe"],
        });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  let exitCode: number | null | undefined;
  void exited.then((c) => {
    exitCode = c;
  });
  const fail = (what: string) =>
    new Error(
      `bench overhead (${runtime}): ${what}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
    );
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    if (!res.ok) throw fail(`GET /metrics answered ${res.status}`);
    return parseRunCounts(await res.text());
  };
  let agents: ChildProcess | null = null;
  try {
    let startupMs = Number.NaN;
    for (let i = 0; Number.isNaN(startupMs); i++) {
      if (exitCode !== undefined) throw fail(`weir run exited ${exitCode} before its API answered`);
      if (i > 600) throw fail("its API did not answer within 30 s");
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.ok) startupMs = performance.now() - t0;
      } catch {
        await sleep(50);
      }
    }
    if (runtime !== "tsx" && stderr.includes(FALLBACK_NOTICE))
      throw fail("the bin ran the sources, not dist/ (run `npm run build` first)");
    if (runtime === "agents")
      agents = spawnAgents({
        port: udpPort,
        partitions: PARTITIONS,
        intervalMs: INTERVAL_MS,
        durationMs: timing.warmupMs + timing.measureMs + 60_000,
        keyHex: AGENT_KEY_HEX,
        packetsPerSec: 1000,
      });
    await sleep(timing.warmupMs);
    const pid = child.pid!;
    const m0 = await metrics();
    const ticks0 = readCpuTicks(pid);
    const w0 = performance.now();
    const u0 = monotonicUs();
    for (let i = 1; i <= 10; i++) {
      await sleep(timing.measureMs / 10);
      progress(i / 10);
    }
    const ticks1 = readCpuTicks(pid);
    const u1 = monotonicUs();
    const wallSec = (performance.now() - w0) / 1000;
    const mem = readMemoryMb(pid);
    const m1 = await metrics();
    const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const cpuSeconds = (ticks1 - ticks0) / hz;
    const cycles = m1.cycles - m0.cycles;
    if (agents) await stopAgents(agents);
    child.kill("SIGTERM");
    const code = await exited;
    if (code !== 0) throw fail(`weir run exited ${code} on SIGTERM`);
    return {
      runtime,
      startupMs,
      measuredSeconds: wallSec,
      cpuSeconds,
      cpuShareOfOneCore: cpuSeconds / wallSec,
      rssMb: mem.rssMb,
      peakRssMb: mem.peakRssMb,
      cycles,
      cycleMsMean: ((m1.cycleSeconds - m0.cycleSeconds) / Math.max(1, cycles)) * 1000,
      reportsPerCycle: (m1.reports - m0.reports) / Math.max(1, cycles),
      windowUs: [u0, u1],
    };
  } finally {
    if (agents) await stopAgents(agents);
    if (exitCode === undefined) {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5000)]);
      if (exitCode === undefined) child.kill("SIGKILL");
    }
  }
}

/**
 * The profile's frames in compiled files under `root` named by their .ts file and line, in
 * place, through the `.js.map` beside each file: V8's profile names the compiled files, since
 * the bin maps source lines only when a stack trace is formatted (src/service/source-maps.ts,
 * whose LazySourceMaps does the mapping here too).
 */
export function toSourcePositions(
  profile: CpuProfile,
  root = fileURLToPath(packageFileUrl("dist")),
): void {
  const maps = new LazySourceMaps(root);
  for (const { callFrame: cf } of profile.nodes) {
    if (!cf.url.startsWith("file:") || cf.lineNumber < 0) continue;
    const origin = maps.originalPosition(cf.url, cf.lineNumber + 1, (cf.columnNumber ?? 0) + 1);
    if (!origin) continue;
    cf.url = pathToFileURL(origin.file).href;
    cf.lineNumber = origin.line - 1;
    cf.columnNumber = origin.column - 1;
  }
}

/** VmRSS of a node process that loads nothing, for scale. */
async function bareNodeRssMb(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
    stdio: "ignore",
  });
  await sleep(1000);
  const { rssMb } = readMemoryMb(child.pid!);
  child.kill("SIGKILL");
  return rssMb;
}

/** Make the cgroups, run every repetition (runtimes interleaved), remove the cgroups. */
export async function measureOverhead(
  opts: { reps: number; warmupMs: number; measureMs: number },
  progress: (f: number, label: string) => void,
): Promise<{
  runs: OverheadRun[];
  bareNodeRssMb: number;
  profileSummary: ProfileSummary;
  profiledCpuShare: number;
}> {
  if (process.getuid?.() !== 0)
    throw new WeirError(ErrorCodes.NOT_ROOT, "bench overhead: needs root (it makes 100 cgroups)");
  if (
    !fs.existsSync(path.join(CGROUPFS, "cpu", "cgroup.procs")) ||
    !fs.existsSync(path.join(CGROUPFS, "cpuacct"))
  )
    throw new WeirError(
      ErrorCodes.TESTBED,
      `bench overhead: needs cgroup v1 cpu and cpuacct under ${CGROUPFS}`,
    );
  const prefix = `weirb-${process.pid}`;
  const cgroups = Array.from(
    { length: PARTITIONS },
    (_, i) => `${prefix}-${String(i).padStart(3, "0")}`,
  );
  const made: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const cleanup = () => {
    for (const dir of made.splice(0).reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // already gone
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    for (const n of cgroups)
      for (const h of ["cpu", "cpuacct"]) {
        const dir = path.join(CGROUPFS, h, n);
        fs.mkdirSync(dir);
        made.push(dir);
      }
    const runs: OverheadRun[] = [];
    const total = opts.reps * RUNTIMES.length;
    for (let rep = 0; rep < opts.reps; rep++) {
      // Interleaved, the order alternating, so drift on a shared machine hits them alike.
      const order = rep % 2 === 0 ? RUNTIMES : [...RUNTIMES].reverse();
      for (const runtime of order) {
        const port = await freePort();
        const udpPort = runtime === "agents" ? await freeUdpPort() : 0;
        const configFile = path.join(tmp, `weir-${runs.length}.yaml`);
        fs.writeFileSync(
          configFile,
          overheadConfigYaml(cgroups, port, runtime === "agents" ? udpPort : undefined),
        );
        const done = runs.length;
        const { windowUs: _, ...run } = await measureRun(
          runtime,
          configFile,
          port,
          opts,
          (f) => progress((done + f) / total, `rep ${rep + 1}/${opts.reps} ${runtime}`),
          [],
          udpPort,
        );
        runs.push(run);
      }
    }
    // One more compiled run under V8's sampling profiler, summarised over the same window:
    // where the CPU goes (its figures are not among the runs: profiling costs CPU itself).
    const profDir = path.join(tmp, "cpu-prof");
    fs.mkdirSync(profDir);
    const port = await freePort();
    const configFile = path.join(tmp, "weir-profiled.yaml");
    fs.writeFileSync(configFile, overheadConfigYaml(cgroups, port));
    const profiled = await measureRun(
      "compiled",
      configFile,
      port,
      opts,
      (f) => progress((total + f) / (total + 1), "profiled run"),
      // a sample every 250 µs (V8's default is 1 ms): ~4 times the samples of a mostly idle process
      ["--cpu-prof", "--cpu-prof-interval", "250", `--cpu-prof-dir=${profDir}`],
    );
    const file = fs.readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error("bench overhead: the profiled run wrote no .cpuprofile");
    // kept for a closer look (Chrome DevTools, speedscope): $TMPDIR/weir-overhead.cpuprofile
    const profile = JSON.parse(fs.readFileSync(path.join(profDir, file), "utf8")) as CpuProfile;
    toSourcePositions(profile);
    fs.writeFileSync(PROFILE_COPY, JSON.stringify(profile));
    const [fromUs, toUs] = profiled.windowUs;
    const profileSummary = summarizeCpuProfile(profile, { fromUs, toUs, top: 15 });
    return {
      runs,
      bareNodeRssMb: await bareNodeRssMb(),
      profileSummary,
      profiledCpuShare: profiled.cpuShareOfOneCore,
    };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanup();
  }
}

export const bench: Benchmark = {
  name: "overhead",
  description:
    "`weir run` from the package bin on 100 real cgroup v1 partitions at 10 cycles/s, compiled (dist/), through tsx, and compiled with the partitions fed by 100 agents over UDP: CPU share and RSS from /proc (root)",
  async run(ctx) {
    const reps = ctx.reps ?? (ctx.quick ? 1 : 5);
    const timing = ctx.quick
      ? { warmupMs: 2000, measureMs: 5000 }
      : { warmupMs: WARMUP_MS, measureMs: 20_000 };
    const load0 = os.loadavg();
    const { runs, bareNodeRssMb, profileSummary, profiledCpuShare } = await measureOverhead(
      { reps, ...timing },
      (f, label) => ctx.progress(f, label),
    );
    const load1 = os.loadavg();
    const figures: BenchFigure[] = [
      ...RUNTIMES.flatMap((rt) => runtimeFigures(rt, runs)),
      {
        name: "a bare node process (node -e with a timer), VmRSS, for scale",
        value: round(bareNodeRssMb, 1),
        unit: "MB",
      },
    ];
    const row = (rt: Runtime) => {
      const mine = runs.filter((r) => r.runtime === rt);
      return [
        rt,
        fmtStats(
          mine.map((r) => r.cpuShareOfOneCore),
          2,
          100,
        ),
        fmtStats(
          mine.map((r) => r.rssMb),
          1,
        ),
        fmtStats(
          mine.map((r) => r.peakRssMb),
          1,
        ),
        fmtStats(
          mine.map((r) => r.cycleMsMean),
          3,
        ),
        fmtStats(
          mine.map((r) => r.startupMs),
          0,
        ),
      ];
    };
    const cycles = runs.map((r) => r.cycles);
    return {
      name: "overhead",
      figures,
      tables: [
        {
          title: `weir run from the package bin, ${reps} repetitions per runtime: median [min–max]`,
          columns: [
            "runtime",
            "CPU, % of one core",
            "VmRSS, MB",
            "VmHWM, MB",
            "cycle mean, ms",
            "start to API, ms",
          ],
          rows: RUNTIMES.map(row),
        },
        {
          title: `where the CPU goes: top self time in one more compiled run under \`node --cpu-prof\` (a sample every 250 µs), over the same ${timing.measureMs / 1000} s window (${profileSummary.busyMs.toFixed(0)} ms busy of ${profileSummary.windowMs.toFixed(0)} ms; ${(profiledCpuShare * 100).toFixed(2)} % of one core from /proc with the profiler on)`,
          columns: ["function (self time)", "share of busy samples", "ms in the window"],
          rows: profileSummary.rows.map((r) => [
            r.fn,
            `${(r.share * 100).toFixed(1)} %`,
            r.selfMs.toFixed(1),
          ]),
        },
      ],
      notes: [
        `Each run: \`bin/weir.js run -c <config>\` executed as a program (its first line starts node with ${[...Object.entries(BIN_COMMAND.env).map(([k, v]) => `${k}=${v}`), ...BIN_NODE_FLAGS].join(" ") || "no flags"}; the profiled run: node with those flags and the profiler's), 100 partitions, intervalMs ${INTERVAL_MS}, HTTP API and metrics on 127.0.0.1, log level info) in a fresh process; ${timing.warmupMs / 1000} s warm-up after its API first answers, then ${timing.measureMs / 1000} s measured${ctx.quick ? "" : ` (the warm-up is long enough to fill the manager's cycle history, at most ${DEFAULT_HISTORY_SIZE} records and at most historyMaxBytes, so memory is the steady state's)`} from /proc/<pid>/stat (utime + stime) and /proc/<pid>/status; SIGTERM at the end (values restored). Runtimes interleaved, order alternating per repetition.`,
        `Per run (runtime: CPU % / VmRSS MB): ${runs.map((r) => `${r.runtime} ${(r.cpuShareOfOneCore * 100).toFixed(2)} / ${r.rssMb.toFixed(1)}`).join(", ")}; cycles per window ${Math.min(...cycles)}–${Math.max(...cycles)}.`,
        "compiled: the bin runs dist/ (tsc output; stack traces mapped to the .ts lines only when one is formatted, src/service/source-maps.ts, and the profile's frames mapped the same way afterwards); tsx: the same bin with WEIR_FROM_SOURCE=1 runs src/ through tsx's loader, as the bin did before there was a build. The partitions' cgroups are real but idle; their packet counters are lo's (one read of /proc/net/dev per cycle for all of them).",
        `agents: compiled, every partition fed by its agent over UDP instead (\`packets: agent\`, the manager's report socket on 127.0.0.1): one process beside the manager (bench/udp-agents.ts, started once the API answers) stands in for ${PARTITIONS} agents, each sending a signed report every ${INTERVAL_MS} ms from its own socket, their phases spread over the cycle, counters rising at 1,000 packets/s each; the manager still reads each partition's CPU counters from its cgroup (every cycle: the partitions carry traffic), and sends each agent its directive. Reports accepted a cycle in the window: ${runs
          .filter((r) => r.runtime === "agents")
          .map((r) => r.reportsPerCycle.toFixed(1))
          .join(", ")}.`,
        `Load average (1, 5, 15 min): ${load0.map((x) => x.toFixed(2)).join(" ")} at the start, ${load1.map((x) => x.toFixed(2)).join(" ")} at the end (${os.cpus().length} CPUs, shared with other work).`,
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
