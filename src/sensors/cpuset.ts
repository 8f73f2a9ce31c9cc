// The CPUs a partition's tasks may run on: its cgroup's effective cpuset where one is
// readable, intersected with the host's online CPUs (the online CPUs alone where no cpuset
// is). Read once at start (not on the hot path); parsed by parseCpuList.
import fs from "node:fs";
import path from "node:path";
import { cgroup2Mount } from "../cgroup/layout.ts";
import { cpusetFiles } from "../cgroup/paths.ts";
import { parseCpuList } from "./parse.ts";
import type { Roots } from "./types.ts";

export interface PartitionCpus {
  /** CPU numbers, ascending. */
  cpus: number[];
  /** The files the list came from, e.g. ".../cpuset.effective_cpus ∩ .../cpu/online". */
  source: string;
}

const isFile = (p: string): boolean => {
  try {
    // no exception for a missing file: a sweep over 10,000 partitions asks for many
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
};

/** `<sysfs>/devices/system/cpu/online`. */
export const onlineCpusFile = (sysfs: string): string =>
  path.join(sysfs, "devices", "system", "cpu", "online");

/** A CPU list file's CPUs, or null when it is missing, unreadable, malformed or empty. */
function readCpuListOrNull(file: string): number[] | null {
  try {
    const cpus = parseCpuList(fs.readFileSync(file, "latin1"), file);
    return cpus.length > 0 ? cpus : null;
  } catch {
    return null;
  }
}

/**
 * The CPUs a partition can run on, from the first readable, non-empty cpuset file
 * (`cpusetFiles`, src/cgroup) intersected with the online CPUs, or the online CPUs alone. Null when
 * neither can be read. Never throws: callers only warn from it.
 */
export function readPartitionCpus(
  roots: Pick<Roots, "cgroupfs" | "sysfs">,
  cgroupPath: string,
): PartitionCpus | null {
  const onlineFile = onlineCpusFile(roots.sysfs);
  return partitionCpus(roots.cgroupfs, cgroupPath, readCpuListOrNull(onlineFile), onlineFile);
}

function partitionCpus(
  cgroupfs: string,
  cgroupPath: string,
  online: number[] | null,
  onlineFile: string,
  v2Mount?: string | null,
): PartitionCpus | null {
  let files: string[] = [];
  try {
    files = cpusetFiles(cgroupfs, cgroupPath, v2Mount);
  } catch {
    // a path with ".." is refused by config validation already; fall back to online CPUs
  }
  for (const file of files) {
    if (!isFile(file)) continue;
    const cpuset = readCpuListOrNull(file);
    if (cpuset === null) continue;
    if (online === null) return { cpus: cpuset, source: file };
    const on = new Set(online);
    return { cpus: cpuset.filter((c) => on.has(c)), source: `${file} ∩ ${onlineFile}` };
  }
  return online === null ? null : { cpus: online, source: onlineFile };
}

/**
 * The CPUs a set of threads may run on: the union of their affinity masks
 * (`<procfs>/<tid>/status`, `Cpus_allowed_list:`; `taskset`/`sched_setaffinity` set them, a
 * cpuset does too). Null when no thread's mask could be read (none left, or all gone). A
 * thread that exits between the listing and the read is skipped.
 */
export function readThreadsCpus(procfs: string, tids: readonly number[]): number[] | null {
  const union = new Set<number>();
  let read = 0;
  for (const tid of tids) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(procfs, String(tid), "status"), "latin1");
    } catch {
      continue;
    }
    const cpus = cpusAllowedOf(text);
    if (cpus === null) continue;
    read++;
    for (const c of cpus) union.add(c);
  }
  return read === 0 ? null : [...union].sort((a, b) => a - b);
}

/** `Cpus_allowed_list:\t0-1` in a /proc status text → [0, 1]; null when absent or malformed. */
export function cpusAllowedOf(statusText: string): number[] | null {
  const key = "Cpus_allowed_list:";
  const at = statusText.indexOf(key);
  if (at < 0) return null;
  const end = statusText.indexOf("\n", at);
  const list = statusText.slice(at + key.length, end < 0 ? undefined : end).trim();
  try {
    return parseCpuList(list, "Cpus_allowed_list");
  } catch {
    return null;
  }
}

/** Thread ids listed in a cgroup's threads file (v1 `tasks`, v2 `cgroup.threads`); [] when unreadable. */
export function readThreadIds(threadsFile: string): number[] {
  let text: string;
  try {
    text = fs.readFileSync(threadsFile, "latin1");
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const tid = Number(line);
    if (line !== "" && Number.isInteger(tid) && tid > 0) out.push(tid);
  }
  return out;
}

/**
 * The CPUs a partition's work can reach now: its cpuset's CPUs (readPartitionCpus) ∩ the
 * union of its threads' affinity masks; the cpuset's alone while it has no thread. A server
 * pinned with `taskset` to one CPU of two reaches 1,000m, whatever the capacity says.
 */
export function readReachableCpus(
  roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">,
  cgroupPath: string,
  threadsFile: string,
): PartitionCpus | null {
  return reachableFrom(roots.procfs, readPartitionCpus(roots, cgroupPath), threadsFile);
}

/** How long ReachableCpusReader reuses the online CPUs it read (CPU hotplug is rare). */
export const ONLINE_CPUS_REUSE_MS = 1000;

/**
 * readReachableCpus for the partitions of one host, read again and again (the manager's
 * sweep): the cgroup2 mount found once (a mount does not move while weir runs) and the online
 * CPUs read at most once every ONLINE_CPUS_REUSE_MS, so one partition's read is its cpuset
 * file, its threads file and its threads' status files. Holds no descriptor.
 */
export class ReachableCpusReader {
  private readonly roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">;
  private readonly v2Mount: string | null;
  private readonly onlineFile: string;
  private online: number[] | null = null;
  private onlineAtMs = Number.NEGATIVE_INFINITY;
  private readonly nowMs: () => number;

  constructor(
    roots: Pick<Roots, "cgroupfs" | "sysfs" | "procfs">,
    nowMs: () => number = () => performance.now(),
  ) {
    this.roots = roots;
    this.v2Mount = cgroup2Mount(roots.cgroupfs);
    this.onlineFile = onlineCpusFile(roots.sysfs);
    this.nowMs = nowMs;
  }

  read(cgroupPath: string, threadsFile: string): PartitionCpus | null {
    const now = this.nowMs();
    if (now - this.onlineAtMs >= ONLINE_CPUS_REUSE_MS) {
      this.online = readCpuListOrNull(this.onlineFile);
      this.onlineAtMs = now;
    }
    const base = partitionCpus(
      this.roots.cgroupfs,
      cgroupPath,
      this.online,
      this.onlineFile,
      this.v2Mount,
    );
    return reachableFrom(this.roots.procfs, base, threadsFile);
  }
}

function reachableFrom(
  procfs: string,
  base: PartitionCpus | null,
  threadsFile: string,
): PartitionCpus | null {
  const affinity = readThreadsCpus(procfs, readThreadIds(threadsFile));
  if (affinity === null) return base;
  if (base === null) return { cpus: affinity, source: `affinity of the threads in ${threadsFile}` };
  const allowed = new Set(affinity);
  return {
    cpus: base.cpus.filter((c) => allowed.has(c)),
    source: `${base.source} ∩ affinity of the threads in ${threadsFile}`,
  };
}
