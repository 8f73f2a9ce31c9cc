// The CPUs a partition's tasks may run on: its cgroup's effective cpuset where one is
// readable, intersected with the host's online CPUs (the online CPUs alone where no cpuset
// is). Read once at start (not on the hot path); parsed by parseCpuList.
import fs from "node:fs";
import path from "node:path";
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
    return fs.statSync(p).isFile();
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
  const online = readCpuListOrNull(onlineFile);
  let files: string[] = [];
  try {
    files = cpusetFiles(roots.cgroupfs, cgroupPath);
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
