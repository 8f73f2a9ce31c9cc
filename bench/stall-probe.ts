// Did the machine itself stand still during a measured window? A real-time wake-up probe run
// beside a benchmark's load: rt-tests' cyclictest, one SCHED_FIFO thread pinned to each CPU,
// each asking to wake every few milliseconds and recording how late it woke. A FIFO thread at
// priority 95 preempts every task the benchmark runs (servers, hog, generator, manager), so
// when it wakes late the CPU was not running the guest's tasks at all: the hypervisor had not
// scheduled the virtual CPU (or the kernel held it with interrupts off). When every CPU's
// thread was late at the same instant, the whole guest stood still: no policy inside it can
// have caused that, or prevented what it does to a p99.
// The probe asks cyclictest not to tune the machine (`--default-system`: it would otherwise
// write 0 to /dev/cpu_dma_latency and change how the CPUs idle, and so the figures it sits
// beside). Its cost is a wake-up per CPU every PROBE_INTERVAL_US (200 a second per CPU), each
// a few microseconds. Without cyclictest (Debian: `apt-get install rt-tests`) there is no
// probe, and the reports say so.
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { defaultRoots } from "../src/sensors/types.ts";

/** The probe's wake-up period per CPU, µs. */
export const PROBE_INTERVAL_US = 5000;
/** Wake-ups later than this are recorded one by one (cyclictest's --spike), µs. */
export const SPIKE_US = 2000;
/** Wake-ups of every CPU this close together are one guest-wide stall, µs. */
export const TOGETHER_US = 2000;

/** One late wake-up: which CPU's thread, how late, and when (CLOCK_MONOTONIC, µs). */
export interface Spike {
  thread: number;
  lateUs: number;
  atUs: number;
}

export interface StallProbeResult {
  /** Per probe thread (one per CPU, in CPU order): its latest wake-up, µs. */
  maxLateUs: number[];
  /** Wake-ups per thread. */
  wakeups: number[];
  /** Every wake-up later than SPIKE_US. */
  spikes: Spike[];
  /**
   * Guest-wide stalls: instants at which every thread woke more than SPIKE_US late within
   * TOGETHER_US of each other; each the least of their lateness (how long every CPU stood
   * still at least), µs, in time order.
   */
  guestWideUs: number[];
}

/**
 * cyclictest's summary (`-q`) and its spike lines, as rt-tests 2.x prints them:
 *   T: 0 ( 8859) P:95 I:5000 C:   2999 Min:     19 Act:   40 Avg:   60 Max:    5431
 *   T: 0 Spike:    5431: TS:  29927485397
 * Pure. Throws on output with no thread line (cyclictest failed or printed something else).
 */
export function parseCyclictest(text: string): Omit<StallProbeResult, "guestWideUs"> {
  const maxLateUs: number[] = [];
  const wakeups: number[] = [];
  const spikes: Spike[] = [];
  for (const line of text.split("\n")) {
    const s = /^T:\s*(\d+)\s+Spike:\s*(\d+):\s*TS:\s*(\d+)/.exec(line);
    if (s) {
      spikes.push({ thread: Number(s[1]), lateUs: Number(s[2]), atUs: Number(s[3]) });
      continue;
    }
    const t = /^T:\s*(\d+)\s.*\sC:\s*(\d+)\s.*\sMax:\s*(\d+)/.exec(line);
    if (t) {
      const i = Number(t[1]);
      wakeups[i] = Number(t[2]);
      maxLateUs[i] = Number(t[3]);
    }
  }
  if (maxLateUs.length === 0)
    throw new Error(`cyclictest printed no thread summary: ${JSON.stringify(text.slice(0, 200))}`);
  return { maxLateUs, wakeups, spikes };
}

/**
 * Guest-wide stalls among the spikes of `threads` probe threads: runs of spikes in time order
 * that include every thread, each spike within `togetherUs` of the run's first. Each stall is
 * the least lateness in its run (every CPU was held off at least that long). Pure.
 */
export function guestWideStalls(
  spikes: readonly Spike[],
  threads: number,
  togetherUs = TOGETHER_US,
): number[] {
  if (threads < 1) return [];
  const byTime = [...spikes].sort((a, b) => a.atUs - b.atUs);
  const out: number[] = [];
  let i = 0;
  while (i < byTime.length) {
    const first = byTime[i]!;
    const seen = new Map<number, number>();
    let j = i;
    while (j < byTime.length && byTime[j]!.atUs - first.atUs <= togetherUs) {
      const s = byTime[j]!;
      seen.set(s.thread, Math.min(seen.get(s.thread) ?? Number.POSITIVE_INFINITY, s.lateUs));
      j++;
    }
    if (seen.size >= threads) {
      out.push(Math.min(...seen.values()));
      i = j;
    } else i++;
  }
  return out;
}

/** A running probe: `result()` waits for it to end (at its duration, or at `stop()`). */
export interface StallProbe {
  stop(): void;
  result(): Promise<StallProbeResult | null>;
}

/**
 * The root of the cgroup v1 cpu hierarchy when it has real-time group scheduling (the kernel's
 * CONFIG_RT_GROUP_SCHED: `cpu.rt_runtime_us`), else null. There a child cgroup is given no
 * real-time runtime unless someone grants it (`cpu.rt_runtime_us` 0, the default), and a task
 * in it cannot become SCHED_FIFO at all — the benchmarks run in such a cgroup (harness.ts
 * isolateSelf), so the probe starts in the root, which has the runtime.
 */
export function realtimeCgroupRoot(cgroupfs = defaultRoots.cgroupfs): string | null {
  const root = path.join(cgroupfs, "cpu");
  return fs.existsSync(path.join(root, "cpu.rt_runtime_us"))
    ? path.join(root, "cgroup.procs")
    : null;
}

/**
 * Starts cyclictest for `durationMs` (one FIFO thread per CPU) in the root cpu cgroup where
 * real-time group scheduling needs it (realtimeCgroupRoot). `result()` is null when cyclictest
 * is not installed; it rejects when cyclictest failed. Kills only its own child.
 */
export function startStallProbe(durationMs: number): StallProbe {
  const seconds = Math.max(1, Math.round(durationMs / 1000));
  let child: ChildProcess;
  let out = "";
  let err = "";
  const rtRoot = realtimeCgroupRoot();
  const done = new Promise<StallProbeResult | null>((resolve, reject) => {
    // sh moves itself (and so cyclictest, which it becomes) to the root cpu cgroup first, when
    // there is one to move to; exit 127 is the shell's "command not found"
    child = spawn(
      "sh",
      [
        "-c",
        'if [ -n "$1" ]; then echo $$ > "$1" || exit 126; fi; shift; exec cyclictest "$@"',
        "sh",
        rtRoot ?? "",
        "-S",
        "-p",
        "95",
        "-i",
        String(PROBE_INTERVAL_US),
        "-d",
        "0",
        "-D",
        String(seconds),
        "-q",
        "-m",
        "--default-system",
        `--spike=${SPIKE_US}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr?.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") resolve(null);
      else reject(e);
    });
    child.on("close", (code, signal) => {
      if (code === 127) {
        resolve(null);
        return;
      }
      if (code !== 0 && signal !== "SIGINT") {
        reject(new Error(`cyclictest exited ${code ?? signal}: ${err.trim().slice(0, 300)}`));
        return;
      }
      try {
        const parsed = parseCyclictest(out);
        resolve({
          ...parsed,
          guestWideUs: guestWideStalls(parsed.spikes, parsed.maxLateUs.length),
        });
      } catch (e) {
        reject(e);
      }
    });
  });
  // a failure is the caller's to read when it asks for the result, not an unhandled rejection
  // while the benchmark runs
  done.catch(() => {});
  return {
    // SIGINT: cyclictest prints its summary and exits
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    },
    result: () => done,
  };
}
