// Benchmark: how soon `weir run` manages a cgroup that appears, with `discover:` (README,
// "Partitions that come and go"). Real cgroups, the package's bin: a parent cgroup with N batch
// cgroups that a template (`<parent>/c-*`, kind batch) matches, weir started on it; then, per
// repetition, one more cgroup is made (in every hierarchy, the cpu one last: a runtime's cgroup
// matches when its cpu directory is there) and the time is taken until weir's first write in it
// (its cpu.idle, or cpu.shares without the idle class, no longer what a new cgroup has); then
// it is removed and weir is given time to drop it. Also, from weir's log, each restart: from
// "stopped for the reload" to the new manager's "weir managing" line (no cycle runs between;
// the new manager's first cycle comes after its API is up). At 10 and 100 partitions (--quick: 10, one repetition).
//   npx tsx bench/discover-real.ts [--reps N] [--quick] [--json]
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { detectCgroupLayout } from "../src/cgroup/layout.ts";
import { packageFileUrl } from "../src/core/package-files.ts";
import {
  type BenchFigure,
  type Benchmark,
  isMain,
  realBenchReps,
  repeated,
  runStandalone,
} from "./harness.ts";
import { freePort } from "./overhead.ts";
import { sleep } from "./real-common.ts";

const BIN = fileURLToPath(packageFileUrl("bin/weir.js"));
const ROOT = "/sys/fs/cgroup";

/** The hierarchies a cgroup is made in, the cpu controller's last (where the template looks). */
function hierarchies(): { dirs: string[]; cpu: string } {
  const layout = detectCgroupLayout(ROOT);
  if (layout.version === 2) return { dirs: [layout.root], cpu: layout.root };
  const dirs = [layout.cpuacct, ...(layout.unified ? [layout.unified] : []), layout.cpu];
  return { dirs: [...new Set(dirs)], cpu: layout.cpu };
}

interface SizeResult {
  /** ms from the cgroup's cpu directory made to weir's first write in it, per repetition */
  manageMs: number[];
  /** ms from the cgroup removed to weir's API no longer listing it, per repetition */
  dropMs: number[];
  /** ms of each restart's pause, from weir's log */
  pauseMs: number[];
}

async function measureSize(
  n: number,
  reps: number,
  progress: (f: number) => void,
): Promise<SizeResult> {
  const { dirs, cpu } = hierarchies();
  const parent = `weirb-${process.pid}-disc${n}`;
  const made: string[] = [];
  const mk = (child: string) => {
    for (const h of dirs) {
      const d = path.join(h, parent, child);
      fs.mkdirSync(d);
      made.push(d);
    }
  };
  const rm = (child: string) => {
    // the cpu directory first: the template stops matching at once
    for (const h of [...dirs].reverse()) {
      const d = path.join(h, parent, child);
      fs.rmdirSync(d);
      made.splice(made.indexOf(d), 1);
    }
  };
  for (const h of dirs) {
    fs.mkdirSync(path.join(h, parent));
    made.push(path.join(h, parent));
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "weir-bench-discover-"));
  let child: ChildProcess | null = null;
  let result: SizeResult | null = null;
  try {
    for (let i = 0; i < n; i++) mk(`c-${i}`);
    const port = await freePort();
    const cfg = path.join(tmp, "weir.yaml");
    fs.writeFileSync(
      cfg,
      [
        "intervalMs: 100",
        "placement: { mode: off }",
        "onShutdown: restore",
        `api: { listen: "127.0.0.1:${port}" }`,
        "discover:",
        "  partitions:",
        `    - { cgroup: "${parent}/c-*", kind: batch }`,
        "",
      ].join("\n"),
    );
    const proc = spawn(BIN, ["run", "-c", cfg, "--json"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = proc;
    const log: Array<{ time: number; msg: string }> = [];
    let rest = "";
    proc.stderr!.on("data", (d: Buffer) => {
      const lines = (rest + d.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const l of lines)
        try {
          log.push(JSON.parse(l));
        } catch {
          // not a log line
        }
    });
    const listed = async (): Promise<string[] | null> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/partitions`);
        if (!res.ok) return null;
        return ((await res.json()) as { partitions: Array<{ id: string }> }).partitions.map(
          (p) => p.id,
        );
      } catch {
        return null;
      }
    };
    const until = async (what: string, cond: () => Promise<boolean> | boolean, ms = 60_000) => {
      const end = Date.now() + ms;
      while (!(await cond())) {
        if (proc.exitCode !== null) throw new Error(`discover-real: weir exited ${proc.exitCode}`);
        if (Date.now() > end)
          throw new Error(
            `discover-real: ${what} within ${ms} ms; weir's log: ${log
              .slice(-3)
              .map((l) => l.msg)
              .join(" | ")}`,
          );
        await sleep(20);
      }
    };
    await until(`${n} partitions`, async () => (await listed())?.length === n);
    const idle = fs.existsSync(path.join(cpu, parent, "c-0", "cpu.idle"));
    const file = idle ? "cpu.idle" : "cpu.shares";
    const out: SizeResult = { manageMs: [], dropMs: [], pauseMs: [] };
    for (let r = 0; r < reps; r++) {
      const name = `c-new${r}`;
      const id = `new${r}`; // the template's default name: what its * matched
      const target = path.join(cpu, parent, name, file);
      const before = log.length;
      mk(name);
      const t0 = performance.now();
      const fresh = fs.readFileSync(target, "utf8");
      // polled every millisecond or so (setTimeout's floor)
      for (;;) {
        if (fs.readFileSync(target, "utf8") !== fresh) break;
        if (performance.now() - t0 > 60_000)
          throw new Error(
            `discover-real: ${name} not written (${file} ${JSON.stringify(fresh)}); weir's log: ${log
              .slice(before)
              .map((l) => l.msg)
              .join(" | ")}`,
          );
        await sleep(1);
      }
      out.manageMs.push(performance.now() - t0);
      await until(`${name} listed`, async () => (await listed())?.includes(id) === true);
      await sleep(300);
      const t1 = performance.now();
      rm(name);
      await until(`${name} dropped`, async () => (await listed())?.includes(id) === false);
      out.dropMs.push(performance.now() - t1);
      // the pauses of this repetition's two restarts
      const mine = log.slice(before);
      for (let i = 0; i < mine.length; i++)
        if (mine[i]!.msg.startsWith("stopped for the reload")) {
          const next = mine.slice(i).find((l) => l.msg.startsWith("weir managing"));
          if (next) out.pauseMs.push(next.time - mine[i]!.time);
        }
      await sleep(300);
      progress((r + 1) / reps);
    }
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once("exit", r)));
    child = null;
    result = out;
  } finally {
    if (child !== null && child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child!.once("exit", r));
    }
    for (const d of made.reverse())
      try {
        fs.rmdirSync(d);
      } catch {
        // still in use: left for the operator, named below
      }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const left = made.filter((d) => fs.existsSync(d));
  if (left.length > 0) throw new Error(`discover-real: could not remove ${left.join(", ")}`);
  return result!;
}

export const bench: Benchmark = {
  name: "discover-real",
  description:
    "weir run with discover: on real cgroups: from a cgroup made to weir's first write in it, from one removed to the API dropping it, and each restart, at 10 and 100 partitions",
  async run(ctx) {
    const reps = realBenchReps("discover-real", ctx);
    const sizes = ctx.quick ? [10] : [10, 100];
    const figures: BenchFigure[] = [];
    for (const [k, n] of sizes.entries()) {
      const r = await measureSize(n, reps, (f) => ctx.progress((k + f) / sizes.length, `${n}`));
      figures.push(
        {
          name: `cgroup made -> first write, ${n} partitions`,
          unit: "ms",
          ...repeated(r.manageMs, 1),
        },
        {
          name: `cgroup removed -> dropped from the API, ${n} partitions`,
          unit: "ms",
          ...repeated(r.dropMs, 1),
        },
        {
          name: `restart: stopped -> new manager started, ${n} partitions`,
          unit: "ms",
          ...repeated(r.pauseMs, 1),
        },
      );
    }
    return {
      name: "discover-real",
      figures,
      notes: [
        "The package's bin (`weir run --json`) on a template `<parent>/c-*` (kind batch) over N cgroups made before it starts; per repetition one more cgroup is made in every hierarchy (the cpu controller's last) and timed until weir's first write in it (cpu.idle, or cpu.shares without the idle class), polled about every millisecond; then removed and timed until /api/partitions (polled every 20 ms) no longer lists it. discover.intervalMs is its default (1000 ms): weir sees the change through inotify on the directories it looks in, not at the next scan.",
        "A change restarts the manager in the process (as a SIGHUP reload does, without reading the file): the restart figure is from the stopped manager's last log line to the new one's first, from weir's own log timestamps (ms), two per repetition (the cgroup made, the cgroup removed); no cycle runs in it, nor until the new manager's API is up and its first cycle comes, which the first-write figure includes.",
      ],
    };
  },
};

if (isMain(import.meta.url)) await runStandalone(bench);
