// Where one partition's cgroup is, per controller, in a layout (layout.ts): the directory
// whose files carry its CPU weight and cap, its CPU usage, its CPU pressure, its threads and
// its cpuset. Pure path arithmetic, except the checks that say a cgroup is there.
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  type CgroupLayout,
  cgroup2Mount,
  cgroupDir,
  detectCgroupLayout,
  normalizeCgroupPath,
} from "./layout.ts";

/** One partition's cgroup directories, per controller (absolute paths). */
export interface PartitionCgroup {
  version: 1 | 2;
  /**
   * The cpu controller: weight (v1 `cpu.shares`, v2 `cpu.weight`), cap (`cpu.cfs_quota_us` +
   * `cpu.cfs_period_us`, `cpu.max`), `cpu.idle`, burst, and `cpu.stat` (v1: throttling only).
   */
  cpu: string;
  /** CPU usage: v1 the cpuacct dir (`cpuacct.usage`); v2 the same dir as `cpu` (`cpu.stat`). */
  cpuacct: string;
  /**
   * The cgroup2 dir whose `cpu.pressure` is the partition's: v2 its own dir; a hybrid v1
   * host its twin under `unified` (cgroup2 has `cpu.pressure` without the cpu controller,
   * but only counts the processes put there too); null on a v1 host without cgroup2.
   */
  pressure: string | null;
  /** Its thread ids: v1 `<cpu>/tasks`, v2 `<dir>/cgroup.threads`. */
  threadsFile: string;
}

/** A partition's cgroup in a layout (no I/O; `findPartitionCgroup` also checks it is there). */
export function partitionCgroup(layout: CgroupLayout, cgroupPath: string): PartitionCgroup {
  if (layout.version === 2) {
    const dir = cgroupDir(layout.root, cgroupPath);
    return {
      version: 2,
      cpu: dir,
      cpuacct: dir,
      pressure: dir,
      threadsFile: path.join(dir, "cgroup.threads"),
    };
  }
  const cpu = cgroupDir(layout.cpu, cgroupPath);
  return {
    version: 1,
    cpu,
    cpuacct: cgroupDir(layout.cpuacct, cgroupPath),
    pressure: layout.unified === undefined ? null : cgroupDir(layout.unified, cgroupPath),
    threadsFile: path.join(cpu, "tasks"),
  };
}

/** Whether `p` is a directory (false when it is not there or cannot be read). */
export const isDir = (p: string): boolean => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * `partitionCgroup`, checked: the cgroup exists in every hierarchy it needs (v1: cpu and
 * cpuacct; v2: its dir). Throws CGROUP_GONE (terminal) naming the path and what is missing.
 * The pressure twin is optional (the CPU delay falls back to schedstat without it).
 */
export function findPartitionCgroup(layout: CgroupLayout, cgroupPath: string): PartitionCgroup {
  const c = partitionCgroup(layout, cgroupPath);
  const missing = [...new Set([c.cpu, c.cpuacct])].filter((d) => !isDir(d));
  if (missing.length === 0) return c;
  const rel = normalizeCgroupPath(cgroupPath);
  const partial =
    c.version === 1 && missing.length === 1
      ? ` (found ${missing[0] === c.cpu ? c.cpuacct : c.cpu} but not ${missing[0]}: a v1 partition needs both the cpu and the cpuacct hierarchy)`
      : "";
  throw new WeirError(
    ErrorCodes.CGROUP_GONE,
    `cgroup ${JSON.stringify(rel)} not found: no ${missing.join(" and no ")} (cgroup v${c.version} layout)${partial}`,
    { retryable: false },
  );
}

/**
 * The hierarchy roots a partition's cgroup is made in: v1 cpu and cpuacct (once when
 * co-mounted) plus a hybrid host's cgroup2 mount; v2 its root.
 */
export function hierarchies(layout: CgroupLayout): string[] {
  if (layout.version === 2) return [layout.root];
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return p;
    }
  };
  const v1 =
    real(layout.cpu) === real(layout.cpuacct) ? [layout.cpu] : [layout.cpu, layout.cpuacct];
  return layout.unified === undefined ? v1 : [...v1, layout.unified];
}

/** A cgroup path's directory in every hierarchy (`hierarchies`), e.g. to make or remove it. */
export const cgroupDirs = (layout: CgroupLayout, cgroupPath: string): string[] =>
  hierarchies(layout).map((h) => cgroupDir(h, cgroupPath));

/**
 * Cpuset files that may hold a partition's CPUs, most specific first:
 * - the cgroup2 mount (`<cgroupfs>`, or `<cgroupfs>/unified` on a hybrid host): the
 *   partition's `cpuset.cpus.effective`, else its nearest ancestor's (a child without the
 *   cpuset controller enabled runs on its parent's CPUs);
 * - v1: `<cgroupfs>/cpuset/<path>/cpuset.effective_cpus`, then `cpuset.cpus` — only at the
 *   partition's own path (a v1 task's cpuset group is unrelated to its cpu group unless
 *   someone made them the same path).
 * Needs no layout: the cpuset controller may sit on either side of a hybrid host.
 */
export function cpusetFiles(
  cgroupfs: string,
  cgroupPath: string,
  /** The cgroup2 mount when the caller found it already (`cgroup2Mount(cgroupfs)`). */
  v2: string | null = cgroup2Mount(cgroupfs),
): string[] {
  const rel = normalizeCgroupPath(cgroupPath);
  const parts = rel === "" ? [] : rel.split("/");
  const out: string[] = [];
  if (v2 !== null && fs.existsSync(path.join(v2, rel)))
    for (let n = parts.length; n >= 0; n--)
      out.push(path.join(v2, ...parts.slice(0, n), "cpuset.cpus.effective"));
  const v1 = path.join(cgroupfs, "cpuset", rel);
  out.push(path.join(v1, "cpuset.effective_cpus"), path.join(v1, "cpuset.cpus"));
  return out;
}

/** `findPartitionCgroup` in this host's layout (`detectCgroupLayout`); throws CGROUP_GONE. */
export const locateCgroup = (cgroupfs: string, cgroupPath: string): PartitionCgroup =>
  findPartitionCgroup(detectCgroupLayout(cgroupfs), cgroupPath);
