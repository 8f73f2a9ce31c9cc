// An A/B of how `weir run` is started (node flags, environment), measured as the overhead
// benchmark measures it: a fresh `weir run` of the compiled bin on 100 real idle cgroup v1
// partitions at 10 cycles/s (overhead.ts's config), its history filled before a 20 s window,
// CPU from /proc/<pid>/stat and, per thread, /proc/<pid>/task/*/stat (the main thread and the
// rest: V8's helper threads, libuv's), VmRSS at the window's end and its mean over the window,
// VmHWM. Not a report benchmark: a check for a change to how the bin starts node (run it under
// the bench lock). Each variant names its node flags and environment in full (the bin's first
// line is not read), so a variant is the same process whatever the bin says.
// Rounds interleave the variants, the order rotating per round; `--together` starts a round's
// variants side by side (each on cgroups of its own) and measures them over the same window,
// instead of one after another. `--bin NAME=PATH` (repeatable) adds a variant NAME that runs
// another build's bin (a checkout of main with its own dist/, say) as its first line starts it:
// an A/B of code, not of flags; `--variants` then names it like any other. A variant written
// `name@DIR` runs the bin of the package at DIR (another checkout, built) with the flags of the
// variant `name` instead (`--variants base@/tmp/weir-main,base`).
// CPU is split into user and system time for the main thread and the rest. `--trace-gc` runs
// every variant with node's `--trace-gc` and counts the collections in the window (scavenges,
// mark-compacts, their pauses on the main thread): it costs a little CPU itself (a line
// written per collection), the same for every variant. `--trace-opt` (implies `--trace-gc`)
// adds node's `--trace-opt` and `--trace-deopt` and counts TurboFan's finished compilations
// in the window, their time (all, and the concurrent phase that runs on V8's helper thread),
// the functions compiled most, and the deoptimisations by function and reason: what the
// helper threads' CPU is spent on besides the collector. Their lines carry no time, so each
// counts at the time of the `--trace-gc` line before it (the same stdout, in order): placed
// to within one scavenge (~2 s) of when it happened. The lines are kept in
// `<out>.<round>-<variant>.trace`.
//   npx tsx bench/overhead-ab.ts [--rounds N] [--variants a,b,...] [--together] [--trace-gc]
//     [--trace-opt] [--bin NAME=PATH ...] [--warmup-ms N] [--measure-ms N] [--out FILE]
// A variant written `name#N` (or `name@DIR#N`) runs on N of the 100 partitions (`base#1,base`:
// what the cycle's fixed part costs at 10 Hz against what each partition adds); `name%CPUS` runs
// it pinned to those CPUs (`main%1`: taskset -c 1).
// `--udp-agents` feeds every partition from an agent over UDP instead of host counters: each
// variant's config gives its partitions `packets: agent` and a UDP listen port, and a separate
// process (bench/udp-agents.ts, started once the API answers, stopped with the run) stands in
// for one agent per partition, each reporting every 100 ms, their phases spread over the cycle
// (1,000 datagrams/s at 100 partitions): what agents' reports cost the manager's process. The
// variant `...+dgram` reads that socket through node:dgram (WEIR_UDP=dgram) instead of in batches.
// Needs root, cgroup v1 (cpu + cpuacct) and a current dist/ (`npm run build`).
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { packageFileUrl } from "../src/core/package-files.ts";
import { fmtStats, isMain } from "./harness.ts";
import {
  AGENT_KEY_HEX,
  FALLBACK_NOTICE,
  freePort,
  freeUdpPort,
  overheadConfigYaml,
  WARMUP_MS,
} from "./overhead.ts";
import {
  INTERVAL_MS,
  PARTITIONS,
  parseProcCpuSplit,
  parseProcMemoryMb,
  parseRunCounts,
  parseTraceDeoptLine,
  parseTraceGcLine,
  parseTraceOptLine,
  shebangCommand,
  type TraceGcEvent,
  type TraceOptEvent,
} from "./overhead-figures.ts";
import { spawnAgents, stopAgents } from "./udp-agents.ts";

const CGROUPFS = "/sys/fs/cgroup";
const BIN = fileURLToPath(packageFileUrl("bin/weir.js"));
/** The young generation the bin gave node until 2026-12-04 (since then 2 MB: bin/weir.js). */
const SEMI_SPACE = "--max-semi-space-size=4";

export interface Variant {
  name: string;
  nodeFlags: readonly string[];
  env: Readonly<Record<string, string>>;
  /** The bin it runs (default: this checkout's). */
  bin?: string;
  /** How many of the PARTITIONS idle partitions its config names (default: all). */
  partitions?: number;
  /** The CPUs it is pinned to (`taskset -c`, which execs node in place: the same pid), or all. */
  cpus?: string;
}

/** `--bin NAME=PATH`: a variant running that bin with its first line's flags and environment. */
export function binVariant(arg: string): Variant {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new Error(`overhead-ab: --bin wants NAME=PATH, got ${JSON.stringify(arg)}`);
  const bin = path.resolve(arg.slice(eq + 1));
  const { env, nodeFlags } = shebangCommand(fs.readFileSync(bin, "utf8"));
  return { name: arg.slice(0, eq), nodeFlags, env, bin };
}

/**
 * `name`, `name@DIR` (the bin of the package at DIR) or either with `#N` after it (N of the
 * PARTITIONS idle partitions, 1..PARTITIONS: what a cycle costs at 10 Hz with fewer) and/or
 * `%CPUS` (pinned to those CPUs, a taskset list: does a manager that always wakes on the same
 * CPU find its code and data still in that CPU's caches?) as a variant of `known`.
 */
export function variantOf(spec: string, known: readonly Variant[]): Variant {
  const pct = spec.indexOf("%");
  if (pct >= 0) {
    const cpus = spec.slice(pct + 1);
    if (!/^\d+([-,]\d+)*$/.test(cpus))
      throw new Error(
        `overhead-ab: ${spec}: %CPUS wants a CPU list like 1 or 0-1, got ${JSON.stringify(cpus)}`,
      );
    return { ...variantOf(spec.slice(0, pct), known), name: spec, cpus };
  }
  const hash = spec.indexOf("#");
  const base = hash < 0 ? spec : spec.slice(0, hash);
  const partitions = hash < 0 ? undefined : Number(spec.slice(hash + 1));
  if (
    partitions !== undefined &&
    !(Number.isInteger(partitions) && partitions >= 1 && partitions <= PARTITIONS)
  )
    throw new Error(`overhead-ab: ${spec}: #N wants a whole number 1..${PARTITIONS}`);
  const at = base.indexOf("@");
  const name = at < 0 ? base : base.slice(0, at);
  const v = known.find((x) => x.name === name);
  if (!v)
    throw new Error(`overhead-ab: no variant ${name} (${known.map((x) => x.name).join(", ")})`);
  const located = at < 0 ? v : { ...v, bin: path.join(base.slice(at + 1), "bin", "weir.js") };
  return spec === name ? v : { ...located, name: spec, ...(partitions ? { partitions } : {}) };
}

/** The variants this A/B knows, by name. `eager-maps`: what the bin did before lazy source maps. */
export const VARIANTS: readonly Variant[] = [
  { name: "base", nodeFlags: [SEMI_SPACE], env: {} },
  { name: "eager-maps", nodeFlags: [SEMI_SPACE, "--enable-source-maps"], env: {} },
  { name: "arena2", nodeFlags: [SEMI_SPACE], env: { MALLOC_ARENA_MAX: "2" } },
  { name: "stgc", nodeFlags: [SEMI_SPACE, "--single-threaded-gc"], env: {} },
  { name: "pool1", nodeFlags: [SEMI_SPACE, "--v8-pool-size=1"], env: {} },
  {
    name: "arena2+stgc",
    nodeFlags: [SEMI_SPACE, "--single-threaded-gc"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  // V8's optimising tiers (Node 20: Maglev is off by default): Maglev as well as TurboFan,
  // Maglev alone (no TurboFan), and no optimising compiler at all (Sparkplug's baseline code)
  {
    name: "arena2+pool1+maglev",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1", "--maglev"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1+maglev+maxopt2",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1", "--maglev", "--max-opt=2"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1+maxopt1",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1", "--max-opt=1"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1+uv1",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2", UV_THREADPOOL_SIZE: "1" },
  },
  // What makes TurboFan compile the same functions again (`--trace-opt`, run19): bytecode
  // flushing (a function's bytecode ages at each mark-compact and is dropped when old, or at
  // once in a memory-reducing one, taking its optimised code with it), and the memory
  // reducer's mark-compacts themselves
  {
    name: "arena2+pool1+noflush",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1", "--no-flush-bytecode"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  // A smaller young generation than the bin's before 2026-12-04 (2 x 4 MB semi-spaces, ~7.5 MB
  // resident at 100 partitions, 0.8 MB of it in use after a scavenge): scavenges 4, 2 or 4/3
  // times as often. semi2 is what the bin has used since (bin/weir.js says why)
  {
    name: "arena2+pool1+semi2",
    nodeFlags: ["--max-semi-space-size=2", "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  // V8 optimises a function once it has used up its interrupt budget a few times (bytecode run,
  // 67,584 units a tick by default): at 10 cycles a second the policy's step was first
  // optimised 67 s after start (a run with --trace-opt, 2026-12-06), so the
  // overhead window (65-85 s) still runs some of the cycle's code unoptimised, and code run
  // once a second later still. An eighth of the budget tiers up sooner (step at 12.6 s, docs/performance.md)
  {
    name: "arena2+pool1+semi2+budget8k",
    nodeFlags: ["--max-semi-space-size=2", "--v8-pool-size=1", "--interrupt-budget=8192"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1+semi1",
    nodeFlags: ["--max-semi-space-size=1", "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  {
    name: "arena2+pool1+semi3",
    nodeFlags: ["--max-semi-space-size=3", "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
  // glibc's malloc keeping what it frees (the bin's flags and arenas): a freed block above the
  // mmap threshold is unmapped and the top of a heap above the trim threshold given back, and
  // every page of either that is used again costs a page fault (about 10 µs each on the PVM
  // guest these were measured on). Fixed thresholds (which also stop glibc's sliding mmap
  // threshold): 16 MiB blocks from the heap, 64 MiB kept at its top
  {
    name: "arena2+pool1+semi2+keep",
    nodeFlags: ["--max-semi-space-size=2", "--v8-pool-size=1"],
    env: {
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "16777216",
      MALLOC_TRIM_THRESHOLD_: "67108864",
    },
  },
  // the bin's flags, agents' datagrams read through node:dgram (with --udp-agents)
  {
    name: "arena2+pool1+semi2+dgram",
    nodeFlags: ["--max-semi-space-size=2", "--v8-pool-size=1"],
    env: { MALLOC_ARENA_MAX: "2", WEIR_UDP: "dgram" },
  },
  {
    name: "arena2+pool1+noreducer",
    nodeFlags: [SEMI_SPACE, "--v8-pool-size=1", "--no-memory-reducer"],
    env: { MALLOC_ARENA_MAX: "2" },
  },
];

export interface AbRun {
  variant: string;
  round: number;
  cpuShare: number;
  mainThreadShare: number;
  otherThreadsShare: number;
  /** The main thread's user and system time, and the other threads' (shares of one core). */
  mainUserShare: number;
  mainSystemShare: number;
  otherUserShare: number;
  otherSystemShare: number;
  /** Minor page faults a cycle in the window: the main thread's and the other threads'. */
  mainFaultsPerCycle: number;
  otherFaultsPerCycle: number;
  /** With `--trace-gc`: the collections that started in the window, and their pauses (ms). */
  gc?: { scavenges: number; scavengeMs: number; markCompacts: number; markCompactMs: number };
  /** With `--trace-opt`: TurboFan's compilations in the window (see the header), the most
   * compiled functions first ("name×count"). */
  opt?: {
    compilations: number;
    compileMs: number;
    concurrentMs: number;
    top: string;
    /** Deoptimisations in the window, the most frequent first ("name (reason)×count"). */
    deopts: number;
    topDeopts: string;
  };
  rssMb: number;
  rssMeanMb: number;
  peakRssMb: number;
  cycles: number;
  /** Reports the transports accepted a cycle in the window (0 without agents). */
  reportsPerCycle: number;
  threads: number;
}

/** CPU ticks per thread (utime, stime) and its minor faults, by tid (node names all its threads "node"). */
function threadTicks(pid: number): Map<number, ReturnType<typeof parseProcCpuSplit>> {
  const out = new Map<number, ReturnType<typeof parseProcCpuSplit>>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      out.set(Number(tid), parseProcCpuSplit(stat));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  variant: Variant;
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  stderr: () => string;
  /** performance.now() at spawn, and the collections its `--trace-gc` lines name. */
  spawnedAt: number;
  gcEvents: TraceGcEvent[];
  /** With `--trace-opt`: each compilation, at the time of the collection line before it. */
  optEvents: Array<TraceOptEvent & { atMs: number }>;
  deoptEvents: Array<{ name: string; reason: string; atMs: number }>;
  /** With --udp-agents: the process standing in for the partitions' agents. */
  agents: ChildProcess | null;
}

async function start(
  variant: Variant,
  configFile: string,
  port: number,
  traceGc = false,
  traceOpt = false,
  /** Where node's trace lines are kept as they came (with `--trace-opt`). */
  traceFile?: string,
  /** With --udp-agents: the manager's UDP port, and how long the agents may run at most. */
  agentsTo?: { udpPort: number; forMs: number },
): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...variant.env };
  delete env.WEIR_FROM_SOURCE;
  for (const k of [
    "MALLOC_ARENA_MAX",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "UV_THREADPOOL_SIZE",
    "WEIR_UDP",
  ])
    if (!(k in variant.env)) delete env[k];
  const bin = variant.bin ?? BIN;
  const flags = [
    ...variant.nodeFlags,
    ...(traceGc || traceOpt ? ["--trace-gc"] : []),
    ...(traceOpt ? ["--trace-opt", "--trace-deopt"] : []),
  ];
  const spawnedAt = performance.now();
  const argv = [process.execPath, ...flags, bin, "run", "-c", configFile];
  if (variant.cpus) argv.unshift("taskset", "-c", variant.cpus);
  const child = spawn(argv[0]!, argv.slice(1), {
    env,
    stdio: ["ignore", traceGc || traceOpt ? "pipe" : "ignore", "pipe"],
  });
  const gcEvents: TraceGcEvent[] = [];
  const optEvents: Started["optEvents"] = [];
  const deoptEvents: Started["deoptEvents"] = [];
  if (traceGc || traceOpt) {
    let partial = "";
    let lastGcAtMs = 0;
    child.stdout!.on("data", (d: Buffer) => {
      if (traceFile) fs.appendFileSync(traceFile, d);
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const e = parseTraceGcLine(line);
        if (e) {
          gcEvents.push(e);
          lastGcAtMs = e.atMs;
          continue;
        }
        const o = traceOpt ? parseTraceOptLine(line) : null;
        if (o) optEvents.push({ ...o, atMs: lastGcAtMs });
        const x = traceOpt && !o ? parseTraceDeoptLine(line) : null;
        if (x) deoptEvents.push({ ...x, atMs: lastGcAtMs });
      }
    });
  }
  let err = "";
  // the bin's notice that it ran the sources, seen as it comes (the start's log lines can push
  // it out of the 4,000 characters kept); it is the bin's first write to stderr
  let ranSources = false;
  child.stderr!.on("data", (d: Buffer) => {
    if (d.toString().includes(FALLBACK_NOTICE)) ranSources = true;
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  // a start that fails stops its process: it is not among the live ones cleanup() kills (run19
  // found two such `weir run`s still running a quarter of an hour after their A/B had failed)
  const fail = (message: string): never => {
    child.kill("SIGKILL");
    throw new Error(message);
  };
  for (let i = 0; ; i++) {
    if (done) fail(`${variant.name}: weir run exited before its API answered: ${err}`);
    if (i > 600) fail(`${variant.name}: its API did not answer within 30 s`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      await sleep(50);
    }
  }
  if (ranSources) fail(`${variant.name}: the bin ran the sources, not dist/ (npm run build first)`);
  // the agents, once the manager listens: this process's node and loader (tsx) run the script
  const agents = agentsTo
    ? spawnAgents({
        port: agentsTo.udpPort,
        partitions: variant.partitions ?? PARTITIONS,
        intervalMs: INTERVAL_MS,
        durationMs: agentsTo.forMs,
        keyHex: AGENT_KEY_HEX,
        packetsPerSec: 1000,
      })
    : null;
  return {
    variant,
    child,
    port,
    exited,
    stderr: () => err,
    spawnedAt,
    gcEvents,
    optEvents,
    deoptEvents,
    agents,
  };
}

/** The cycles run and the reports accepted so far, from the run's /metrics. */
async function counts(port: number): Promise<{ cycles: number; reports: number }> {
  return parseRunCounts(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
}

/** Measure already warmed-up runs over one window (together, or a single one). */
interface Measured {
  run: AbRun;
  /** The window, as ms since the process was spawned (the isolate starts a few ms later). */
  windowMs: [number, number];
  started: Started;
}

async function measure(runs: Started[], round: number, measureMs: number): Promise<Measured[]> {
  const hz = 100; // USER_HZ; getconf CLK_TCK is 100 on Linux
  const c0 = await Promise.all(runs.map((r) => counts(r.port)));
  const t0 = runs.map((r) => threadTicks(r.child.pid!));
  const w0 = performance.now();
  const rssSum = runs.map(() => 0);
  const samples = 10;
  for (let i = 0; i < samples; i++) {
    await sleep(measureMs / samples);
    runs.forEach((r, k) => {
      rssSum[k]! += parseProcMemoryMb(fs.readFileSync(`/proc/${r.child.pid}/status`, "utf8")).rssMb;
    });
  }
  const t1 = runs.map((r) => threadTicks(r.child.pid!));
  const wallSec = (performance.now() - w0) / 1000;
  const c1 = await Promise.all(runs.map((r) => counts(r.port)));
  return runs.map((r, k) => {
    const pid = r.child.pid!;
    const mem = parseProcMemoryMb(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    const share = { mainUser: 0, mainSystem: 0, otherUser: 0, otherSystem: 0 };
    const faults = { main: 0, other: 0 };
    for (const [tid, now] of t1[k]!) {
      const was = t0[k]!.get(tid);
      const user = (now.userTicks - (was?.userTicks ?? 0)) / hz / wallSec;
      const system = (now.systemTicks - (was?.systemTicks ?? 0)) / hz / wallSec;
      const minor = now.minorFaults - (was?.minorFaults ?? 0);
      if (tid === pid) {
        share.mainUser += user;
        share.mainSystem += system;
        faults.main += minor;
      } else {
        share.otherUser += user;
        share.otherSystem += system;
        faults.other += minor;
      }
    }
    const cycles = Math.max(1, c1[k]!.cycles - c0[k]!.cycles);
    const main = share.mainUser + share.mainSystem;
    const other = share.otherUser + share.otherSystem;
    return {
      run: {
        variant: r.variant.name,
        round,
        cpuShare: main + other,
        mainThreadShare: main,
        otherThreadsShare: other,
        mainUserShare: share.mainUser,
        mainSystemShare: share.mainSystem,
        otherUserShare: share.otherUser,
        otherSystemShare: share.otherSystem,
        mainFaultsPerCycle: faults.main / cycles,
        otherFaultsPerCycle: faults.other / cycles,
        rssMb: mem.rssMb,
        rssMeanMb: rssSum[k]! / samples,
        peakRssMb: mem.peakRssMb,
        cycles: c1[k]!.cycles - c0[k]!.cycles,
        reportsPerCycle: (c1[k]!.reports - c0[k]!.reports) / cycles,
        threads: t1[k]!.size,
      },
      windowMs: [w0 - r.spawnedAt, w0 + wallSec * 1000 - r.spawnedAt],
      started: r,
    };
  });
}

/** The collections in a measured window (read once the process has exited: stdout flushed). */
function gcInWindow(m: Measured): NonNullable<AbRun["gc"]> {
  const [from, to] = m.windowMs;
  const inside = m.started.gcEvents.filter((e) => e.atMs >= from && e.atMs < to);
  const of = (kind: TraceGcEvent["kind"]) => inside.filter((e) => e.kind === kind);
  const sum = (es: TraceGcEvent[]) => es.reduce((a, e) => a + e.pauseMs, 0);
  const scavenges = [...of("scavenge"), ...of("minor-mark-compact")];
  return {
    scavenges: scavenges.length,
    scavengeMs: sum(scavenges),
    markCompacts: of("mark-compact").length,
    markCompactMs: sum(of("mark-compact")),
  };
}

/** "a×3 b×1": the most frequent first, at most 8. */
function mostFrequent(keys: readonly string[]): string {
  const count = new Map<string, number>();
  for (const k of keys) count.set(k, (count.get(k) ?? 0) + 1);
  return [...count]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, n]) => `${k}×${n}`)
    .join(" ");
}

/** TurboFan's compilations in a measured window (read once the process has exited). */
function optInWindow(m: Measured): NonNullable<AbRun["opt"]> {
  const [from, to] = m.windowMs;
  const within = <T extends { atMs: number }>(es: T[]) =>
    es.filter((e) => e.atMs >= from && e.atMs < to);
  const inside = within(m.started.optEvents);
  const deopts = within(m.started.deoptEvents);
  return {
    compilations: inside.length,
    compileMs: inside.reduce((a, e) => a + e.compileMs, 0),
    concurrentMs: inside.reduce((a, e) => a + e.concurrentMs, 0),
    top: mostFrequent(inside.map((e) => e.name || "(anonymous)")),
    deopts: deopts.length,
    topDeopts: mostFrequent(deopts.map((e) => `${e.name || "(anonymous)"} (${e.reason})`)),
  };
}

async function stop(r: Started): Promise<void> {
  if (r.agents) await stopAgents(r.agents);
  r.child.kill("SIGTERM");
  const code = await Promise.race([r.exited, sleep(10_000).then(() => "timeout" as const)]);
  if (code === "timeout") {
    r.child.kill("SIGKILL");
    throw new Error(`${r.variant.name}: did not exit within 10 s of SIGTERM`);
  }
  if (code !== 0) throw new Error(`${r.variant.name}: exited ${code} on SIGTERM: ${r.stderr()}`);
}

export function summarize(runs: readonly AbRun[], variants: readonly string[]): string[] {
  const lines = [
    "variant: CPU % of one core (main thread / other threads) | VmRSS end, mean over the window, VmHWM MB: median [min–max]",
  ];
  for (const v of variants) {
    const mine = runs.filter((r) => r.variant === v);
    const f = (g: (r: AbRun) => number, d: number, s = 1) => fmtStats(mine.map(g), d, s);
    lines.push(
      `${v} (${mine.length} runs): CPU ${f((r) => r.cpuShare, 2, 100)} (main ${f((r) => r.mainThreadShare, 2, 100)} / other ${f((r) => r.otherThreadsShare, 2, 100)}) | VmRSS ${f((r) => r.rssMb, 1)}, mean ${f((r) => r.rssMeanMb, 1)}, VmHWM ${f((r) => r.peakRssMb, 1)}; threads ${mine.map((r) => r.threads).join("/")}`,
      `  user/system: main ${f((r) => r.mainUserShare, 2, 100)} / ${f((r) => r.mainSystemShare, 2, 100)}, other ${f((r) => r.otherUserShare, 2, 100)} / ${f((r) => r.otherSystemShare, 2, 100)}`,
      `  minor page faults a cycle: main ${f((r) => r.mainFaultsPerCycle, 1)}, other ${f((r) => r.otherFaultsPerCycle, 1)}; reports accepted a cycle ${f((r) => r.reportsPerCycle, 1)}`,
    );
    const gcs = mine.flatMap((r) => (r.gc ? [r.gc] : []));
    if (gcs.length > 0) {
      const g = (x: (e: NonNullable<AbRun["gc"]>) => number, d: number) => fmtStats(gcs.map(x), d);
      lines.push(
        `  collections in the window: scavenges ${g((e) => e.scavenges, 0)} (${g((e) => e.scavengeMs, 1)} ms), mark-compacts ${g((e) => e.markCompacts, 0)} (${g((e) => e.markCompactMs, 1)} ms)`,
      );
    }
    const opts = mine.flatMap((r) => (r.opt ? [r.opt] : []));
    if (opts.length > 0) {
      const o = (x: (e: NonNullable<AbRun["opt"]>) => number, d: number) =>
        fmtStats(opts.map(x), d);
      lines.push(
        `  TurboFan compilations in the window: ${o((e) => e.compilations, 0)} (${o((e) => e.compileMs, 1)} ms, concurrent phase ${o((e) => e.concurrentMs, 1)} ms); most compiled, per run: ${opts.map((e) => e.top || "none").join(" | ")}`,
        `  deoptimisations in the window: ${o((e) => e.deopts, 0)}; per run: ${opts.map((e) => e.topDeopts || "none").join(" | ")}`,
      );
    }
  }
  return lines;
}

function option(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("overhead-ab: needs root (it makes cgroups)");
  const rounds = Number(option(argv, "--rounds") ?? 3);
  const names = (option(argv, "--variants") ?? "base,eager-maps").split(",");
  const known = [
    ...VARIANTS,
    ...argv.flatMap((a, i) => (a === "--bin" ? [binVariant(argv[i + 1] ?? "")] : [])),
  ];
  const variants = names.map((n) => variantOf(n, known));
  const together = argv.includes("--together");
  const udpAgents = argv.includes("--udp-agents");
  const traceOpt = argv.includes("--trace-opt");
  const traceGc = traceOpt || argv.includes("--trace-gc");
  const warmupMs = Number(option(argv, "--warmup-ms") ?? WARMUP_MS);
  const measureMs = Number(option(argv, "--measure-ms") ?? 20_000);
  const outFile = option(argv, "--out") ?? path.join(os.tmpdir(), "weir-overhead-ab.json");

  // with --trace-opt, each run's trace lines beside the results (FILE.<round>-<variant>.trace)
  const traceFileOf = (round: number, v: Variant) =>
    traceOpt ? `${outFile}.${round}-${v.name.replace(/[^\w+.-]/g, "_")}.trace` : undefined;
  const prefix = `weirab-${process.pid}`;
  const slots = together ? variants.length : 1;
  const cgroupsOf = (slot: number) =>
    Array.from({ length: PARTITIONS }, (_, i) => `${prefix}-${slot}-${String(i).padStart(3, "0")}`);
  const made: string[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const live: Started[] = [];
  const cleanup = () => {
    for (const r of live) {
      r.agents?.kill("SIGKILL");
      r.child.kill("SIGKILL");
    }
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
  const load0 = os.loadavg();
  const t0 = new Date();
  const results: AbRun[] = [];
  try {
    for (let slot = 0; slot < slots; slot++)
      for (const n of cgroupsOf(slot))
        for (const h of ["cpu", "cpuacct"]) {
          const dir = path.join(CGROUPFS, h, n);
          fs.mkdirSync(dir);
          made.push(dir);
        }
    // the agents run at most as long as a round (they stop with their run before that)
    const agentsForMs = (together ? 1 : variants.length) * (warmupMs + measureMs + 60_000);
    const configFor = async (slot: number, v: Variant, tag: string) => {
      const port = await freePort();
      const file = path.join(tmp, `weir-${tag.replace(/[^\w+.-]/g, "_")}.yaml`);
      const cgroups = cgroupsOf(slot).slice(0, v.partitions ?? PARTITIONS);
      const udpPort = udpAgents ? await freeUdpPort() : 0;
      fs.writeFileSync(file, overheadConfigYaml(cgroups, port, udpAgents ? udpPort : undefined));
      return { port, file, agentsTo: udpAgents ? { udpPort, forMs: agentsForMs } : undefined };
    };
    for (let round = 0; round < rounds; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      if (together) {
        for (const [slot, v] of order.entries()) {
          const { port, file, agentsTo } = await configFor(slot, v, `${round}-${v.name}`);
          live.push(await start(v, file, port, traceGc, traceOpt, traceFileOf(round, v), agentsTo));
        }
        await sleep(warmupMs);
        const measured = await measure(live, round, measureMs);
        for (const r of live.splice(0)) await stop(r);
        for (const m of measured) {
          if (traceGc) m.run.gc = gcInWindow(m);
          if (traceOpt) m.run.opt = optInWindow(m);
          results.push(m.run);
          process.stderr.write(`${JSON.stringify(m.run)}\n`);
        }
      } else {
        for (const v of order) {
          const { port, file, agentsTo } = await configFor(0, v, `${round}-${v.name}`);
          live.push(await start(v, file, port, traceGc, traceOpt, traceFileOf(round, v), agentsTo));
          await sleep(warmupMs);
          const [m] = await measure(live, round, measureMs);
          for (const r of live.splice(0)) await stop(r);
          if (traceGc) m!.run.gc = gcInWindow(m!);
          if (traceOpt) m!.run.opt = optInWindow(m!);
          results.push(m!.run);
          process.stderr.write(`${JSON.stringify(m!.run)}\n`);
        }
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    cleanup();
  }
  const load1 = os.loadavg();
  const header = `overhead-ab: ${rounds} rounds, ${together ? "variants side by side" : "variants one after another"}${udpAgents ? `, ${PARTITIONS} agents reporting over UDP every ${INTERVAL_MS} ms` : ""}, ${warmupMs / 1000} s warm-up, ${measureMs / 1000} s measured; ${t0.toISOString().slice(11, 16)}–${new Date().toISOString().slice(11, 16)} UTC, load ${load0[0]!.toFixed(2)} → ${load1[0]!.toFixed(2)} (${os.cpus().length} CPUs)`;
  const lines = [header, ...summarize(results, names)];
  for (const v of variants)
    lines.push(
      `  ${v.name}: ${v.cpus ? `taskset -c ${v.cpus} ` : ""}node ${v.nodeFlags.join(" ")} ${v.bin ?? BIN}${Object.entries(
        v.env,
      )
        .map(([k, x]) => ` ${k}=${x}`)
        .join("")}`,
    );
  fs.writeFileSync(outFile, JSON.stringify({ header, runs: results }, null, 2));
  process.stdout.write(`${lines.join("\n")}\n(runs in ${outFile})\n`);
}

if (isMain(import.meta.url)) await main(process.argv.slice(2));
