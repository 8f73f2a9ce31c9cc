// How long a task woken on another CPU waits before it runs, by what that CPU is doing (root,
// cgroup v1 cpu controller, ≥ 2 CPUs): the kernel-level cost under the p99 ratio of
// conservation-real. A sleeper process pinned to CPU 1 waits on a loopback UDP socket; this
// process, pinned to CPU 0, sends it a datagram carrying CLOCK_MONOTONIC every 3–4 ms; the
// sleeper records receive − send. CPU 1 is either idle, or runs a busy loop (pinned there) in a
// cgroup of its own: in the kernel's idle class (`cpu.idle = 1`, what weir does with batch), at
// `cpu.shares = 2` (best-effort pods), or at the default 1024 (plain CFS). Conditions are
// interleaved per repetition (`--reps`, default 5; `--quick`: 1, fewer datagrams); figures are
// medians of the per-repetition p50 and p99 with their range. Makes cgroups
// weirb-<pid>-wake-{idle,be,normal} under the v1 cpu hierarchy and removes them; kills only the
// processes it started.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describeLlc, readLlc } from "../src/sensors/cpu-caches.ts";
import {
  type BenchFigure,
  type Benchmark,
  fmtStats,
  isMain,
  quantile,
  realBenchReps,
  repeated,
  runStandalone,
} from "./harness.ts";
import { pin, sleep } from "./real-common.ts";

const CPU_ROOT = "/sys/fs/cgroup/cpu";
const NAME = `weirb-${process.pid}-wake`;

/** The sleeper: binds, prints its port, answers nothing, prints the latencies (µs) when done. */
const SLEEPER = `
const dgram = require("node:dgram");
const n = Number(process.argv[1]);
const workNs = BigInt(Number(process.argv[2] ?? 0) * 1000);
const lat = [];
const s = dgram.createSocket("udp4");
s.on("message", (m) => {
  const now = process.hrtime.bigint();
  lat.push(Number(now - BigInt(m.toString())) / 1000);
  while (process.hrtime.bigint() - now < workNs);
  if (lat.length >= n) { process.stdout.write(JSON.stringify(lat) + "\\n"); s.close(); }
});
s.bind(0, "127.0.0.1", () => process.stdout.write(s.address().port + "\\n"));
setTimeout(() => process.exit(2), 120000).unref();
`;
const BUSY = "const end = Date.now() + 120000; let x = 0; while (Date.now() < end) x++;";

/** The busy loops' cgroups and what is written in them. */
const GROUPS: Record<string, Record<string, string>> = {
  idle: { "cpu.idle": "1" },
  be: { "cpu.shares": "2" },
  normal: {},
};
/** Server work per datagram in the two-server conditions (µs): both servers woken at once. */
const WORK_US = 500;

/** The child's stdout as lines: `next()` resolves with each line in order. */
function lines(child: ChildProcess): { next(): Promise<string> } {
  let buf = "";
  const ready: string[] = [];
  const waiting: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w.resolve(line);
      else ready.push(line);
    }
  });
  child.once("exit", (code) => {
    for (const w of waiting.splice(0))
      w.reject(new Error(`sleeper exited (${code}) before it answered`));
  });
  return {
    next: () =>
      ready.length > 0
        ? Promise.resolve(ready.shift()!)
        : new Promise((resolve, reject) => waiting.push({ resolve, reject })),
  };
}

interface Condition {
  name: string;
  /** cgroup of the busy loops (a GROUPS key), none when absent. */
  group?: string;
  /** Busy loops, pinned to CPU 1 (`pinned`) or free to run anywhere. */
  busy: number;
  /** Sleepers: one pinned to CPU 1, or `servers` of them free, each spinning `workUs` per datagram. */
  servers?: number;
  workUs?: number;
}

const CONDITIONS: Condition[] = [
  { name: "one sleeper on CPU 1, CPU 1 otherwise idle", busy: 0 },
  { name: "one sleeper on CPU 1 beside an idle-class busy loop", group: "idle", busy: 1 },
  { name: "one sleeper on CPU 1 beside a busy loop at cpu.shares 2", group: "be", busy: 1 },
  { name: "one sleeper on CPU 1 beside a busy loop at cpu.shares 1024", group: "normal", busy: 1 },
  {
    name: `two servers (${WORK_US} µs per datagram), no busy loop`,
    busy: 0,
    servers: 2,
    workUs: WORK_US,
  },
  {
    name: `two servers (${WORK_US} µs per datagram) beside two idle-class busy loops`,
    group: "idle",
    busy: 2,
    servers: 2,
    workUs: WORK_US,
  },
];

/** One run of a condition: `count` datagrams to each sleeper; every sleeper's latencies (µs). */
async function runCondition(c: Condition, count: number): Promise<number[][]> {
  const started: ChildProcess[] = [];
  const free = c.servers !== undefined;
  try {
    for (let i = 0; i < c.busy; i++) {
      const busy = spawn(process.execPath, ["-e", BUSY], { stdio: "ignore" });
      started.push(busy);
      if (c.group)
        fs.writeFileSync(
          path.join(CPU_ROOT, `${NAME}-${c.group}`, "cgroup.procs"),
          String(busy.pid),
        );
      if (!free) pin(busy.pid!, "1");
    }
    const sleepers = Array.from({ length: c.servers ?? 1 }, () => {
      const sl = spawn(process.execPath, ["-e", SLEEPER, String(count), String(c.workUs ?? 0)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      started.push(sl);
      if (!free) pin(sl.pid!, "1");
      return lines(sl);
    });
    const ports = await Promise.all(sleepers.map(async (o) => Number(await o.next())));
    const dgram = await import("node:dgram");
    const sock = dgram.createSocket("udp4");
    try {
      await sleep(300); // let the busy loops settle
      for (let i = 0; i < count; i++) {
        for (const port of ports) sock.send(String(process.hrtime.bigint()), port, "127.0.0.1");
        await sleep(3 + Math.random());
      }
      return await Promise.all(sleepers.map(async (o) => JSON.parse(await o.next()) as number[]));
    } finally {
      sock.close();
    }
  } finally {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}

export const bench: Benchmark = {
  name: "wakeup",
  description:
    "root: how long a task woken on another CPU waits to run, by what that CPU runs (idle, an idle-class busy loop, shares 2, shares 1024)",
  async run(ctx) {
    const reps = realBenchReps("wakeup", ctx);
    if (os.cpus().length < 2) throw new Error("bench wakeup: needs at least 2 CPUs");
    if (!fs.existsSync(CPU_ROOT))
      throw new Error(`bench wakeup: needs the v1 cpu hierarchy at ${CPU_ROOT}`);
    const count = ctx.quick ? 300 : 1000;
    const before = pin(process.pid, "0");
    const per: Record<string, { p50: number[]; p99: number[] }> = {};
    try {
      for (const [g, files] of Object.entries(GROUPS)) {
        const dir = path.join(CPU_ROOT, `${NAME}-${g}`);
        fs.mkdirSync(dir);
        for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
      }
      for (let rep = 0; rep < reps; rep++)
        for (let k = 0; k < CONDITIONS.length; k++) {
          const c = CONDITIONS[(k + rep) % CONDITIONS.length]!;
          ctx.progress((rep * CONDITIONS.length + k) / (reps * CONDITIONS.length), c.name);
          const runs = await runCondition(c, count);
          const sorted = runs.map((l) => [...l].sort((a, b) => a - b));
          per[c.name] ??= { p50: [], p99: [] };
          const cell = per[c.name]!;
          // the worst sleeper's quantiles
          cell.p50.push(Math.max(...sorted.map((l) => quantile(l, 0.5))));
          cell.p99.push(Math.max(...sorted.map((l) => quantile(l, 0.99))));
        }
    } finally {
      pin(process.pid, before);
      for (const g of Object.keys(GROUPS)) {
        const dir = path.join(CPU_ROOT, `${NAME}-${g}`);
        for (let i = 0; i < 20 && fs.existsSync(dir); i++) {
          try {
            fs.rmdirSync(dir);
          } catch {
            await sleep(50); // a killed busy loop leaves the group a moment later
          }
        }
      }
    }
    const figures: BenchFigure[] = CONDITIONS.flatMap((c) => [
      { name: `wake-up to run, ${c.name}: p50`, ...repeated(per[c.name]!.p50, 0), unit: "µs" },
      { name: `wake-up to run, ${c.name}: p99`, ...repeated(per[c.name]!.p99, 0), unit: "µs" },
    ]);
    return {
      name: "wakeup",
      figures,
      tables: [
        {
          title: `sleepers woken by loopback datagrams sent from CPU 0, ${count} per run (µs from send to the sleeper running, the worst sleeper's, median [min–max] over ${reps} repetitions)`,
          columns: ["condition", "p50 µs", "p99 µs"],
          rows: CONDITIONS.map((c) => [
            c.name,
            fmtStats(per[c.name]!.p50, 0),
            fmtStats(per[c.name]!.p99, 0),
          ]),
        },
      ],
      notes: [
        "Latency is receive − send in CLOCK_MONOTONIC, so it includes the loopback path and the sleeper's event loop, the same in every condition; the difference between rows is what the neighbour costs a woken task.",
        `One sleeper: the busy loop is a Node process pinned to CPU 1 in a v1 cpu cgroup of its own, the sleeper is pinned to CPU 1 and this process to CPU 0. Two servers: both sleepers and both busy loops may run on either CPU (as conservation-real's servers and hog do); each datagram pair wakes both servers at once and each spins ${WORK_US} µs, so one may have to wait for the other unless the kernel moves it to the other CPU. ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}.`,
        describeLlc(readLlc()),
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
