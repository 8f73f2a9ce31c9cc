// Processes the testbed starts: spawn into cgroups before the program runs, identify
// them later by pid + start time or by their tag argument, and stop them.
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupProcs } from "./cgroups.ts";

export interface ProcStat {
  /** R, S, D, Z, ... */
  state: string;
  /** Start time after boot in clock ticks (field 22): with the pid, a process's identity. */
  startTime: number;
}

/** Parse /proc/<pid>/stat; the command may contain spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isFinite(startTime)) return null;
  return { state: fields[0], startTime };
}

export function readProcStat(pid: number, procfs = "/proc"): ProcStat | null {
  try {
    return parseProcStat(readFileSync(join(procfs, String(pid), "stat"), "utf8"));
  } catch {
    return null;
  }
}

export function readCmdline(pid: number, procfs = "/proc"): string[] | null {
  try {
    const raw = readFileSync(join(procfs, String(pid), "cmdline"), "utf8");
    return raw.split("\0").filter((s, i, a) => !(s === "" && i === a.length - 1));
  } catch {
    return null;
  }
}

/** Alive = exists and is not a zombie; with `startTime`, also the same process as recorded. */
export function isAlive(pid: number, startTime?: number, procfs = "/proc"): boolean {
  const st = readProcStat(pid, procfs);
  if (!st || st.state === "Z" || st.state === "X") return false;
  return startTime === undefined || st.startTime === startTime;
}

/** Live pids whose argv has an element for which `match` is true (a scan of /proc). */
export function pidsWithArgMatching(
  match: (arg: string) => boolean,
  procfs = "/proc",
): Map<number, string[]> {
  const out = new Map<number, string[]>();
  let entries: string[];
  try {
    entries = readdirSync(procfs);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const argv = readCmdline(pid, procfs);
    if (argv?.some(match) && isAlive(pid, undefined, procfs)) out.set(pid, argv);
  }
  return out;
}

/** Live pids whose argv contains exactly `arg`. */
export const pidsWithArg = (arg: string, procfs = "/proc"): number[] => [
  ...pidsWithArgMatching((a) => a === arg, procfs).keys(),
];

/** Pids in the given cgroup dirs whose argv contains `arg`. */
export function cgroupPidsWithArg(dirs: string[], arg: string, procfs = "/proc"): number[] {
  const out = new Set<number>();
  for (const d of dirs) {
    for (const pid of cgroupProcs(d)) {
      if (readCmdline(pid, procfs)?.includes(arg)) out.add(pid);
    }
  }
  return [...out];
}

// sh puts itself into every cgroup dir, then execs the program: the program (same pid)
// is inside its cgroups from its first instruction. If a dir is gone, it never runs.
const SPAWN_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; n=$((n-1)); done; exec "$@"';

export interface SpawnedProcess {
  pid: number;
  startTime: number;
  argv: string[];
}

/**
 * Start `argv` detached (own session, survives its starter), inside `cgroupDirs`,
 * stdout and stderr appended to `logFile`.
 */
export function spawnInCgroups(
  argv: string[],
  cgroupDirs: string[],
  logFile: string,
  procfs = "/proc",
): SpawnedProcess {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(
      "sh",
      ["-c", SPAWN_SCRIPT, "weir-spawn", String(cgroupDirs.length), ...cgroupDirs, ...argv],
      {
        detached: true,
        stdio: ["ignore", fd, fd],
      },
    );
    child.on("error", () => {});
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new WeirError(ErrorCodes.TESTBED, `cannot start ${argv[0]}`);
    const st = readProcStat(pid, procfs);
    if (!st)
      throw new WeirError(
        ErrorCodes.TESTBED,
        `${argv[0]} (pid ${pid}) exited at once; see ${logFile}`,
      );
    return { pid, startTime: st.startTime, argv };
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, wait up to `graceMs`, SIGKILL what is left, wait up to `killWaitMs`.
 * Returns the pids still alive at the end (normally none).
 */
export async function stopProcesses(
  pids: number[],
  opts: { graceMs?: number; killWaitMs?: number; procfs?: string } = {},
): Promise<number[]> {
  const procfs = opts.procfs ?? "/proc";
  const alive = () => pids.filter((p) => isAlive(p, undefined, procfs));
  const signal = (sig: NodeJS.Signals) => {
    for (const p of alive()) {
      try {
        process.kill(p, sig);
      } catch {
        // gone meanwhile
      }
    }
  };
  const waitGone = async (ms: number) => {
    const until = Date.now() + ms;
    while (alive().length > 0 && Date.now() < until) await sleep(20);
  };
  signal("SIGTERM");
  await waitGone(opts.graceMs ?? 2000);
  if (alive().length > 0) {
    signal("SIGKILL");
    await waitGone(opts.killWaitMs ?? 2000);
  }
  return alive();
}
