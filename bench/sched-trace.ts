// Where the packet servers wait for a CPU, from the kernel's own scheduler events: a tracefs
// instance of its own (sched_switch, sched_wakeup, sched_migrate_task, no other tracing
// touched) captured for a few seconds of a run, and a pure analyser of its text. For every
// interval a server thread is runnable but not running (woken, or preempted), it adds up what
// the server's own CPU ran meanwhile (whom it waited behind) and what the other CPU ran (was a
// CPU it could have used idle, or running only the hog?), and counts the migrations of queued
// servers (the kernel's balancer pulling them). 2-CPU hosts: "the other CPU" is the one the
// server is not queued on.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/** What a thread is to the benchmark. Pid 0 (the CPU's idle task) is "idle". */
export type TaskClass = "idle" | "hog" | "server" | "generator" | "other";
const CLASSES: TaskClass[] = ["idle", "hog", "server", "generator", "other"];

export interface WaitBreakdown {
  /** From the first to the last event, ms. */
  spanMs: number;
  /** Server runnable → running intervals that ended in the capture. */
  waits: number;
  /** Σ of the servers' runnable-but-not-running time, ms, and per second of capture. */
  waitMs: number;
  waitMsPerSec: number;
  p99WaitUs: number;
  /** Waits over 1 ms. */
  waitsOver1Ms: number;
  /** Share (0..1) of the servers' waiting time by what the other CPU was running meanwhile. */
  otherCpu: Record<TaskClass, number>;
  /** Share (0..1) of the servers' waiting time by what their own CPU was running meanwhile. */
  ownCpu: Record<TaskClass, number>;
  /** Migrations of a server while it was queued (the balancer moving it to the other CPU). */
  pulls: number;
  /** Server wake-ups, and those put on a CPU running a non-hog task while the other CPU was idle or ran the hog. */
  wakeups: number;
  wakeupsBesideFreeCpu: number;
  /**
   * The servers' uninterruptible sleeps (switched out in state D, until woken) over 1 ms: a
   * server waiting in the kernel (for a lock, a page, I/O) rather than for a CPU or for
   * requests. The longest, and the task that woke it (comm-pid as tracefs names it).
   */
  blocked: { count: number; longestMs: number; longestBy: string | null };
}

const zeros = (): Record<TaskClass, number> => ({
  idle: 0,
  hog: 0,
  server: 0,
  generator: 0,
  other: 0,
});

const LINE = /\[(\d+)\]\s+\S+\s+([\d.]+): (sched_switch|sched_wakeup|sched_migrate_task): (.*)$/;
/** The task a tracefs line was recorded in (the waker of a sched_wakeup), as `comm-pid`. */
const TASK = /^\s*(.+?-\d+)\s+\[/;
const SWITCH = /prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)/;
const WAKEUP = /\bpid=(\d+) .*target_cpu=(\d+)/;
const MIGRATE = /\bpid=(\d+) .*dest_cpu=(\d+)/;

/**
 * The breakdown of a trace's text (tracefs `trace` format) for the threads `classOf` names
 * "server". Time before both CPUs' current task is known (a switch seen on each) is skipped.
 */
export function analyseSchedTrace(
  text: string,
  classOf: (tid: number) => TaskClass,
): WaitBreakdown {
  const cls = (tid: number): TaskClass => (tid === 0 ? "idle" : classOf(tid));
  const cur = [-1, -1];
  const queued = new Map<number, { since: number; cpu: number }>();
  const other = zeros();
  const own = zeros();
  const waits: number[] = [];
  let pulls = 0;
  let wakeups = 0;
  let besideFree = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  const asleepInD = new Map<number, number>();
  const blocked = { count: 0, longestMs: 0, longestBy: null as string | null };
  const known = () => cur[0]! >= 0 && cur[1]! >= 0;
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const cpu = Number(m[1]);
    if (cpu > 1) continue;
    const tUs = Number(m[2]) * 1e6;
    if (Number.isNaN(first)) first = tUs;
    if (known() && !Number.isNaN(last)) {
      const dt = tUs - last;
      for (const q of queued.values()) {
        other[cls(cur[1 - q.cpu]!)] += dt;
        own[cls(cur[q.cpu]!)] += dt;
      }
    }
    last = tUs;
    const f = m[4]!;
    if (m[3] === "sched_switch") {
      const s = SWITCH.exec(f);
      if (!s) continue;
      const prev = Number(s[1]);
      const next = Number(s[3]);
      if (cls(prev) === "server") {
        // preempted: runnable again from now; else it sleeps (a wake-up the kernel reports
        // for a thread still running, just before it sleeps, queued nothing)
        if (s[2]!.startsWith("R")) queued.set(prev, { since: tUs, cpu });
        else queued.delete(prev);
        if (s[2]!.startsWith("D")) asleepInD.set(prev, tUs);
      }
      const q = queued.get(next);
      if (q) {
        if (known()) waits.push(tUs - q.since);
        queued.delete(next);
      }
      cur[cpu] = next;
    } else if (m[3] === "sched_wakeup") {
      const w = WAKEUP.exec(f);
      if (!w || cls(Number(w[1])) !== "server") continue;
      const dSince = asleepInD.get(Number(w[1]));
      if (dSince !== undefined) {
        asleepInD.delete(Number(w[1]));
        const ms = (tUs - dSince) / 1000;
        if (ms > 1) {
          blocked.count++;
          if (ms > blocked.longestMs) {
            blocked.longestMs = ms;
            blocked.longestBy = TASK.exec(line)?.[1] ?? null;
          }
        }
      }
      const target = Number(w[2]);
      // a thread woken while still on its CPU (it had not switched out yet) waits for nothing
      if (target > 1 || cur.includes(Number(w[1]))) continue;
      queued.set(Number(w[1]), { since: tUs, cpu: target });
      if (known()) {
        wakeups++;
        const here = cls(cur[target]!);
        const there = cls(cur[1 - target]!);
        if (here !== "idle" && here !== "hog" && (there === "idle" || there === "hog"))
          besideFree++;
      }
    } else {
      const g = MIGRATE.exec(f);
      const q = g ? queued.get(Number(g[1])) : undefined;
      if (g && q && Number(g[2]) <= 1) {
        q.cpu = Number(g[2]);
        pulls++;
      }
    }
  }
  const total = CLASSES.reduce((s, c) => s + other[c], 0);
  const share = (r: Record<TaskClass, number>) => {
    const out = zeros();
    for (const c of CLASSES) out[c] = total > 0 ? r[c] / total : Number.NaN;
    return out;
  };
  waits.sort((a, b) => a - b);
  const spanMs = Number.isNaN(first) ? 0 : (last - first) / 1000;
  return {
    spanMs,
    waits: waits.length,
    waitMs: total / 1000,
    waitMsPerSec: spanMs > 0 ? total / spanMs : Number.NaN,
    p99WaitUs:
      waits.length > 0
        ? waits[Math.min(waits.length - 1, Math.floor(waits.length * 0.99))]!
        : Number.NaN,
    waitsOver1Ms: waits.filter((w) => w > 1000).length,
    otherCpu: share(other),
    ownCpu: share(own),
    pulls,
    wakeups,
    wakeupsBesideFreeCpu: besideFree,
    blocked,
  };
}

/**
 * A tracefs instance of this process's own (`instances/<name>`): start() clears it and turns
 * the three scheduler events on, pause() turns recording off (one small write: it runs while
 * the load generator in this process is timing packets), take() returns the text and clears
 * the instance (reading megabytes: call it after the load), close() removes the instance.
 * Host tracing outside the instance is untouched. Where tracefs is not mounted (a machine just
 * booted had /sys/kernel/tracing empty), it mounts it there and close() unmounts it again.
 */
export class SchedTrace {
  private readonly dir: string;
  private readonly mounted: string | null = null;
  constructor(name: string, tracefs = "/sys/kernel/tracing", bufferKb = 16384) {
    if (!fs.existsSync(path.join(tracefs, "instances"))) {
      try {
        execFileSync("mount", ["-t", "tracefs", "nodev", tracefs], { stdio: "pipe" });
      } catch (e) {
        const why = (e as { stderr?: Buffer }).stderr?.toString().trim() || String(e);
        throw new Error(`tracefs is not mounted at ${tracefs} and mounting it failed: ${why}`);
      }
      this.mounted = tracefs;
    }
    this.dir = path.join(tracefs, "instances", name);
    fs.mkdirSync(this.dir);
    fs.writeFileSync(path.join(this.dir, "buffer_size_kb"), String(bufferKb));
  }
  private put(file: string, value: string): void {
    fs.writeFileSync(path.join(this.dir, file), value);
  }
  start(): void {
    this.put("tracing_on", "0");
    this.put("trace", "");
    this.put("set_event", "sched:sched_switch sched:sched_wakeup sched:sched_migrate_task\n");
    this.put("tracing_on", "1");
  }
  pause(): void {
    this.put("tracing_on", "0");
  }
  take(): string {
    this.pause();
    const text = fs.readFileSync(path.join(this.dir, "trace"), "utf8");
    this.put("set_event", "");
    this.put("trace", "");
    return text;
  }
  close(): void {
    try {
      this.put("tracing_on", "0");
      this.put("set_event", "");
    } finally {
      fs.rmdirSync(this.dir);
      if (this.mounted) execFileSync("umount", [this.mounted], { stdio: "pipe" });
    }
  }
}

/** Every thread id of a process (none when it is gone). */
export function threadsOf(pid: number | null | undefined): number[] {
  if (!pid) return [];
  try {
    return fs.readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/**
 * The classes of the benchmark's threads, read now: every thread of the servers, of the hog
 * and of this process (the load generator and manager); anything else is "other".
 */
export function classifier(
  serverPids: Array<number | null>,
  hogPids: Array<number | null>,
): (tid: number) => TaskClass {
  const m = new Map<number, TaskClass>();
  for (const p of serverPids) for (const t of threadsOf(p)) m.set(t, "server");
  for (const p of hogPids) for (const t of threadsOf(p)) m.set(t, "hog");
  for (const t of threadsOf(process.pid)) m.set(t, "generator");
  return (tid) => m.get(tid) ?? "other";
}

/**
 * Records from `atMs` from now for `forMs` (timers: only the small start and pause writes run
 * during the load); `text()`, called after the load, stops a recording still running and
 * returns what was recorded ("" if it never started).
 */
export function captureLater(trace: SchedTrace, atMs: number, forMs: number): { text(): string } {
  let started = false;
  const t1 = setTimeout(() => {
    trace.start();
    started = true;
  }, atMs);
  const t2 = setTimeout(() => trace.pause(), atMs + forMs);
  return {
    text: () => {
      clearTimeout(t1);
      clearTimeout(t2);
      return started ? trace.take() : "";
    },
  };
}

/** Σ run_delay (ns) and Σ timeslices over a process's threads; zeros if it is gone. */
export function schedstatOf(pid: number | null): { delayNs: number; runs: number } {
  const sum = { delayNs: 0, runs: 0 };
  if (!pid) return sum;
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return sum;
  }
  for (const t of tids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").trim().split(" ");
      sum.delayNs += Number(f[1]);
      sum.runs += Number(f[2]);
    } catch {
      // a thread that exited between the listing and the read
    }
  }
  return sum;
}
