// Overhead of the real manager on real cgroups: weir's manager loop (src/service/run.ts, as
// `weir run` runs it: sensors on held fds, weir's policy, the cgroup v1 actuator, metrics)
// managing 100 real cgroup v1 partitions at 10 cycles/s for ~20 s. Its CPU share and memory
// come from the kernel: /proc/self/stat (utime + stime) and /proc/self/status (VmRSS, VmHWM).
// The measurement runs in a fresh child process, so nothing another benchmark loaded counts.
// Needs root and cgroup v1 (cpu + cpuacct). Creates /sys/fs/cgroup/{cpu,cpuacct}/weirb-<pid>-NNN
// and removes them afterwards, also on SIGINT/SIGTERM.
// Run: weir bench overhead [--quick]   or   npx tsx bench/overhead.ts [--json] [--quick]
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCodes, WeirError } from "../src/core/errors.ts";
import type { BenchFigure, Benchmark } from "./harness.ts";
import { isMain, runStandalone } from "./harness.ts";

const CGROUPFS = "/sys/fs/cgroup";
const PARTITIONS = 100;
const INTERVAL_MS = 100;

export interface OverheadMeasurement {
  partitions: number;
  intervalMs: number;
  measuredSeconds: number;
  cycles: number;
  cpuSeconds: number;
  /** CPU time ÷ wall time over the measured window (0.01 = 1 % of one core). */
  cpuShareOfOneCore: number;
  rssMb: number;
  peakRssMb: number;
  /** VmRSS of the child before weir's modules were loaded (node + tsx alone). */
  baselineRssMb: number;
  cycleMsMean: number;
  cycleMsP99: number;
  writes: number;
  clockTicksPerSec: number;
}

/** utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat). */
export function procSelfCpuTicks(stat = fs.readFileSync("/proc/self/stat", "utf8")): number {
  // The command name (field 2) may contain spaces; fields after it follow the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return Number(rest[14 - 3]) + Number(rest[15 - 3]);
}

/** VmRSS and VmHWM (peak) in MB from /proc/self/status. */
export function procSelfMemoryMb(status = fs.readFileSync("/proc/self/status", "utf8")): {
  rssMb: number;
  peakRssMb: number;
} {
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
}

const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};

/** The child: make the cgroups, run the manager, measure itself, clean up, print JSON. */
async function child(seconds: number): Promise<void> {
  const baselineRssMb = procSelfMemoryMb().rssMb;
  const prefix = `weirb-${process.pid}`;
  const names = Array.from(
    { length: PARTITIONS },
    (_, i) => `${prefix}-${String(i).padStart(3, "0")}`,
  );
  const made: string[] = [];
  const cleanup = () => {
    for (const dir of made.splice(0).reverse()) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // already gone
      }
    }
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    for (const n of names)
      for (const h of ["cpu", "cpuacct"]) {
        const dir = path.join(CGROUPFS, h, n);
        fs.mkdirSync(dir);
        made.push(dir);
      }
    const { parseConfig } = await import("../src/manager/config.ts");
    const { startManager } = await import("../src/service/run.ts");
    const { default: pino } = await import("pino");
    const cfg = parseConfig({
      intervalMs: INTERVAL_MS,
      onShutdown: "restore",
      partitions: names.map((n, i) => ({
        name: `p${String(i).padStart(3, "0")}`,
        cgroup: n,
        // Real sysfs packet counters on every partition (the same files a veth has).
        interfaces: ["lo"],
      })),
    });
    const ac = new AbortController();
    const cycleMs: number[] = [];
    let writes = 0;
    let measuring = false;
    const running = await startManager({
      cfg,
      logger: pino({ level: "silent" }),
      api: false,
      signal: ac.signal,
      onRecord: (r) => {
        if (!measuring) return;
        cycleMs.push(r.timingsMs.total);
        for (const p of r.partitions) writes += p.written.length;
      },
    });
    const warmupMs = seconds >= 20 ? 3000 : 2000;
    await new Promise((r) => setTimeout(r, warmupMs));
    process.stderr.write("progress 0.1\n");
    measuring = true;
    const ticks0 = procSelfCpuTicks();
    const t0 = performance.now();
    for (let i = 1; i <= 10; i++) {
      await new Promise((r) => setTimeout(r, (seconds * 1000) / 10));
      process.stderr.write(`progress ${(0.1 + 0.9 * (i / 10)).toFixed(2)}\n`);
    }
    const ticks1 = procSelfCpuTicks();
    const wallSec = (performance.now() - t0) / 1000;
    const mem = procSelfMemoryMb();
    measuring = false;
    ac.abort();
    await running.done;
    const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const cpuSeconds = (ticks1 - ticks0) / hz;
    const m: OverheadMeasurement = {
      partitions: PARTITIONS,
      intervalMs: INTERVAL_MS,
      measuredSeconds: wallSec,
      cycles: cycleMs.length,
      cpuSeconds,
      cpuShareOfOneCore: cpuSeconds / wallSec,
      rssMb: mem.rssMb,
      peakRssMb: mem.peakRssMb,
      baselineRssMb,
      cycleMsMean: cycleMs.reduce((a, b) => a + b, 0) / Math.max(1, cycleMs.length),
      cycleMsP99: percentile(cycleMs, 0.99),
      writes,
      clockTicksPerSec: hz,
    };
    process.stdout.write(`${JSON.stringify(m)}\n`);
  } finally {
    cleanup();
  }
}

/** Run the measurement in a fresh process; resolves with what it printed. */
export function measureOverhead(
  seconds: number,
  progress: (f: number) => void,
): Promise<OverheadMeasurement> {
  if (process.getuid?.() !== 0)
    return Promise.reject(
      new WeirError(ErrorCodes.NOT_ROOT, "bench overhead: needs root (it makes 100 cgroups)"),
    );
  if (
    !fs.existsSync(path.join(CGROUPFS, "cpu", "cgroup.procs")) ||
    !fs.existsSync(path.join(CGROUPFS, "cpuacct"))
  )
    return Promise.reject(
      new WeirError(
        ErrorCodes.TESTBED,
        `bench overhead: needs cgroup v1 cpu and cpuacct under ${CGROUPFS}`,
      ),
    );
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", self, "--child", String(seconds)], {
      cwd: path.dirname(path.dirname(self)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n")) {
        const m = /^progress ([\d.]+)$/.exec(line.trim());
        if (m) progress(Number(m[1]));
        else if (line.trim()) err += `${line}\n`;
      }
    });
    p.on("error", reject);
    p.on("close", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as OverheadMeasurement);
      else
        reject(
          new Error(
            `bench overhead child exited ${code}: ${err.trim().split("\n").slice(-3).join(" | ")}`,
          ),
        );
    });
  });
}

export const bench: Benchmark = {
  name: "overhead",
  description:
    "weir's manager loop on 100 real cgroup v1 partitions at 10 cycles/s: CPU share and RSS from /proc (root)",
  async run(ctx) {
    const seconds = ctx.quick ? 5 : 20;
    const m = await measureOverhead(seconds, (f) => ctx.progress(f, "overhead"));
    const figures: BenchFigure[] = [
      {
        name: `manager CPU, ${m.partitions} partitions at ${1000 / m.intervalMs} cycles/s`,
        value: Math.round(m.cpuShareOfOneCore * 10000) / 100,
        unit: "% of one core",
        target: "<= 1 %",
        meets: m.cpuShareOfOneCore <= 0.01,
      },
      {
        name: "manager resident memory (VmRSS at the end)",
        value: Math.round(m.rssMb * 10) / 10,
        unit: "MB",
        target: "<= 80 MB",
        meets: m.rssMb <= 80,
      },
      {
        name: "peak resident memory (VmHWM)",
        value: Math.round(m.peakRssMb * 10) / 10,
        unit: "MB",
      },
      {
        name: "of which node + tsx before weir's modules load (VmRSS)",
        value: Math.round(m.baselineRssMb * 10) / 10,
        unit: "MB",
      },
      {
        name: "cycle time (sample + step + apply), mean",
        value: Math.round(m.cycleMsMean * 1000) / 1000,
        unit: "ms",
      },
      { name: "cycle time, p99", value: Math.round(m.cycleMsP99 * 1000) / 1000, unit: "ms" },
    ];
    return {
      name: "overhead",
      figures,
      notes: [
        `${m.cycles} cycles in ${m.measuredSeconds.toFixed(1)} s measured after a warm-up; ${m.cpuSeconds.toFixed(2)} CPU-s from /proc/self/stat at ${m.clockTicksPerSec} ticks/s; ${m.writes} cgroup values written.`,
        "The process is node + tsx (TypeScript compiled at load) running src/service/run.ts without the HTTP API; the partitions' cgroups are real but idle, and their packet counters are lo's sysfs counters.",
      ],
    };
  },
};

if (isMain(import.meta.url)) {
  const i = process.argv.indexOf("--child");
  if (i >= 0) await child(Number(process.argv[i + 1] ?? 20));
  else await runStandalone(bench);
}
