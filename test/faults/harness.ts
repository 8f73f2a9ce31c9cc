// Shared by the fault-injection files (root, real cgroup v1): start `weir run` from the bin and
// read its cycle records (stdout, --json), make and remove the test's own cgroups, and wait.
import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import type { CycleRecord } from "../../src/core/model.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const isRoot = process.getuid?.() === 0;
export const CPU_ROOT = "/sys/fs/cgroup/cpu";
export const CPUACCT_ROOT = "/sys/fs/cgroup/cpuacct";
export const hasV1 = existsSync(`${CPU_ROOT}/cpu.cfs_quota_us`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const putFiles = (d: string, files: Record<string, string>) => {
  mkdirSync(d, { recursive: true });
  for (const [f, v] of Object.entries(files)) writeFileSync(path.join(d, f), v);
};

/**
 * How long a test file's `afterAll` may take to remove a 10,000-partition fixture host (170,000
 * files and directories on disk): 8.4 s on an idle 2-CPU machine (fixtureHost then rmSync, timed
 * once by hand, 2026-12-06), over the faults project's 60 s hook timeout in a soak with other
 * work on the machine (fd-limit's `afterAll`, the same day).
 */
export const FIXTURE_REMOVAL_TIMEOUT_MS = 300_000;

/**
 * A fixture host under `root` as the kernel lays one out (weir's `roots` point at it): v1
 * cgroups `cgroupfs/cpu|cpuacct/p0..p{n-1}`, two online CPUs, the real /proc/stat, and with
 * `interfaces` a sysfs interface `p<i>` per partition with zeroed counters. For the dry-run
 * rows at 10,000 partitions, where real cgroups would be the test's cost.
 */
export function fixtureHost(root: string, n: number, opts: { interfaces: boolean }): void {
  const cpuFiles: Record<string, string> = {
    "cpu.cfs_quota_us": "-1\n",
    "cpu.cfs_period_us": "100000\n",
    "cpu.shares": "1024\n",
    "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
    "cpu.idle": "0\n",
    "cpu.cfs_burst_us": "0\n",
    "cgroup.procs": "",
    tasks: "",
  };
  const stats = { rx_packets: "0\n", tx_packets: "0\n", rx_dropped: "0\n", tx_dropped: "0\n" };
  putFiles(path.join(root, "cgroupfs/cpu"), cpuFiles);
  putFiles(path.join(root, "cgroupfs/cpuacct"), { "cpuacct.usage": "0\n" });
  for (let i = 0; i < n; i++) {
    putFiles(path.join(root, `cgroupfs/cpu/p${i}`), cpuFiles);
    putFiles(path.join(root, `cgroupfs/cpuacct/p${i}`), { "cpuacct.usage": "0\n" });
    if (opts.interfaces) putFiles(path.join(root, `sysfs/class/net/p${i}/statistics`), stats);
  }
  putFiles(path.join(root, "sysfs/devices/system/cpu"), { online: "0-1\n" });
  putFiles(path.join(root, "procfs"), { stat: readFileSync("/proc/stat", "utf8") });
}

/** Polls `cond` every 50 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** A v1 cgroup in both the cpu and cpuacct hierarchies (as weir's v1 backend expects). */
export function makeCgroup(rel: string): void {
  for (const root of [CPU_ROOT, CPUACCT_ROOT]) mkdirSync(path.join(root, rel), { recursive: true });
}

/** Removes cgroups deepest first (each must be empty of processes); missing ones are skipped. */
export function removeCgroups(rels: string[]): void {
  const sorted = [...rels].sort((a, b) => b.split("/").length - a.split("/").length);
  for (const rel of sorted)
    for (const root of [CPU_ROOT, CPUACCT_ROOT]) {
      const d = path.join(root, rel);
      if (existsSync(d)) rmdirSync(d);
    }
}

export const readCpu = (rel: string, file: string): number =>
  Number(readFileSync(path.join(CPU_ROOT, rel, file), "utf8").trim());

export const writeCpu = (rel: string, file: string, value: string | number): void =>
  writeFileSync(path.join(CPU_ROOT, rel, file), String(value));

/** cpu.cfs_quota_us, cpu.shares and cpu.idle of a v1 cgroup. */
export function cpuValues(rel: string): { quota: number; shares: number; idle: number } {
  return {
    quota: readCpu(rel, "cpu.cfs_quota_us"),
    shares: readCpu(rel, "cpu.shares"),
    idle: existsSync(path.join(CPU_ROOT, rel, "cpu.idle")) ? readCpu(rel, "cpu.idle") : 0,
  };
}

export interface Weir {
  child: ChildProcess;
  records: CycleRecord[];
  /** Resolves with the exit code (null when a signal ended it) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  /** The newest record, or null before the first cycle. */
  last: () => CycleRecord | null;
}

/**
 * `weir run -c cfg --json` from the bin (compiled dist/ when current). Records are parsed from
 * stdout; keepRecords bounds how many are kept, and timingsOnly keeps of each record only its
 * cycle, start and timings (records of 10,000 partitions are megabytes each). openFilesLimit
 * runs it under that RLIMIT_NOFILE (prlimit, util-linux).
 */
export function startWeir(
  cfg: string,
  o: { keepRecords?: number; args?: string[]; timingsOnly?: boolean; openFilesLimit?: number } = {},
): Weir {
  const argv = [path.join(REPO, "bin/weir.js"), "run", "-c", cfg, "--json", ...(o.args ?? [])];
  // prlimit sets RLIMIT_NOFILE (soft and hard) and execs node: the PID is weir's
  const child =
    o.openFilesLimit === undefined
      ? spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(
          "prlimit",
          [`--nofile=${o.openFilesLimit}:${o.openFilesLimit}`, "--", process.execPath, ...argv],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
  const records: CycleRecord[] = [];
  let err = "";
  let chunks: string[] = [];
  const take = (line: string) => {
    if (!line.startsWith("{")) return;
    if (o.timingsOnly) {
      const head = /^\{"cycle":(\d+),"startedAtMs":([\d.]+)/.exec(line);
      const t = /"timingsMs":(\{[^}]*\})\}$/.exec(line.slice(-300));
      if (!head || !t) return;
      records.push({
        cycle: Number(head[1]),
        startedAtMs: Number(head[2]),
        timingsMs: JSON.parse(t[1]!),
      } as CycleRecord);
    } else records.push(JSON.parse(line) as CycleRecord);
    if (o.keepRecords !== undefined && records.length > o.keepRecords) records.shift();
  };
  child.stdout!.on("data", (d: Buffer) => {
    let text = d.toString();
    let i = text.indexOf("\n");
    while (i >= 0) {
      chunks.push(text.slice(0, i));
      take(chunks.join(""));
      chunks = [];
      text = text.slice(i + 1);
      i = text.indexOf("\n");
    }
    if (text) chunks.push(text);
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("exit", (code, signal) => r({ code, signal })),
  );
  return {
    child,
    records,
    exited,
    stderr: () => err,
    last: () => records[records.length - 1] ?? null,
  };
}

/** Ends a weir this test started (by its PID) and waits for it; no-op when it already exited. */
export async function stopWeir(w: Weir, signal: NodeJS.Signals = "SIGTERM") {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  return w.exited;
}

/** Nearest-rank percentile of `xs` (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Live processes whose command line contains `fragment` (a test's own temporary directory). */
export function pidsWithArg(fragment: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8");
      const state = /^\S+ \(.*\) (\S) /.exec(readFileSync(`/proc/${e}/stat`, "utf8"))?.[1];
      if (cmd.includes(fragment) && state !== "Z" && state !== "X") out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const API_URL = /HTTP API and dashboard at (http:\/\/[^\s"/]+)/;

/**
 * The API's base URL as weir logs it at start. Configs here say `api.listen: 127.0.0.1:0`, so
 * the kernel picks a free port: no port derived from the test's pid that something else on a
 * shared machine may hold.
 */
export async function apiBase(w: Weir, timeoutMs = 60_000): Promise<string> {
  const found = () => API_URL.exec(w.stderr())?.[1];
  await until(() => found() !== undefined, timeoutMs);
  const url = found();
  if (!url) throw new Error(`weir did not say where its API listens: ${w.stderr().slice(-2000)}`);
  return url;
}

/** A UDP port on 127.0.0.1 nobody holds at the moment of asking (for a transport's listen). */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}
