// Where this host's cgroup hierarchies are: cgroup v2 (unified), v1 (cpu + cpuacct), or a
// hybrid of the two. The one place weir decides it; sensors, actuators, the testbed and
// `weir demo` all ask here, so what one finds the others find. Reads only whether files
// exist and what `cgroup.controllers` lists.
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";

/**
 * Where the cpu controller lives, and the other hierarchies a partition's cgroup is made in.
 * - v2: `root` is the cgroup2 mount whose cgroups are the partitions': `<cgroupfs>` on a
 *   unified host, `<cgroupfs>/unified` on a hybrid host whose cpu controller is there.
 * - v1: `root` is `<cgroupfs>`; `cpu` and `cpuacct` are the two hierarchies (one directory
 *   when co-mounted as `cpu,cpuacct`); `unified` is a hybrid host's cgroup2 mount without
 *   the cpu controller, where a partition's twin cgroup gives it its own `cpu.pressure`.
 */
export type CgroupLayout =
  | { version: 1; root: string; cpu: string; cpuacct: string; unified?: string }
  | { version: 2; root: string };

const isFile = (p: string): boolean => {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

/** A cgroup2 mount (or any cgroup in one) has `cgroup.controllers`; v1 never does. */
export const isCgroup2 = (dir: string): boolean => isFile(path.join(dir, "cgroup.controllers"));

/** The controllers `<dir>/cgroup.controllers` lists (empty when there is no such file). */
export function controllersOf(dir: string): string[] {
  try {
    return fs
      .readFileSync(path.join(dir, "cgroup.controllers"), "latin1")
      .split(/\s+/)
      .filter((c) => c !== "");
  } catch {
    return [];
  }
}

/**
 * The cgroup2 mount under `cgroupfs`, if any: `<cgroupfs>` itself (unified host), else
 * `<cgroupfs>/unified` (hybrid host), else null (v1 only).
 */
export function cgroup2Mount(cgroupfs: string): string | null {
  for (const dir of [cgroupfs, path.join(cgroupfs, "unified")]) if (isCgroup2(dir)) return dir;
  return null;
}

/**
 * This host's layout, decided in one order:
 * 1. `<cgroupfs>` is a cgroup2 mount (`cgroup.controllers`): v2 there — a unified host has
 *    nothing else (a child without the cpu controller still has `cpu.stat` usage);
 * 2. v1 `cpu` and `cpuacct` hierarchies (`cpu/cpu.cfs_quota_us`, `cpuacct/cpuacct.usage`):
 *    v1, with `unified` when `<cgroupfs>/unified` is a cgroup2 mount — on a hybrid host the
 *    cpu controller is bound to v1, so v1 wins;
 * 3. `<cgroupfs>/unified` lists `cpu` in its `cgroup.controllers`: v2 there (a hybrid host
 *    whose cpu controller was given to cgroup2).
 * Throws CGROUP_GONE (terminal) when none holds, naming what it looked for.
 */
export function detectCgroupLayout(cgroupfs: string): CgroupLayout {
  if (isCgroup2(cgroupfs)) return { version: 2, root: cgroupfs };
  const cpu = path.join(cgroupfs, "cpu");
  const cpuacct = path.join(cgroupfs, "cpuacct");
  const unified = path.join(cgroupfs, "unified");
  const hasCpu = isFile(path.join(cpu, "cpu.cfs_quota_us"));
  const hasCpuacct = isFile(path.join(cpuacct, "cpuacct.usage"));
  if (hasCpu && hasCpuacct)
    return isCgroup2(unified)
      ? { version: 1, root: cgroupfs, cpu, cpuacct, unified }
      : { version: 1, root: cgroupfs, cpu, cpuacct };
  if (controllersOf(unified).includes("cpu")) return { version: 2, root: unified };
  const partial =
    hasCpu || hasCpuacct
      ? ` (found ${hasCpu ? cpu : cpuacct} but not ${hasCpu ? cpuacct : cpu}: v1 needs both)`
      : "";
  throw new WeirError(
    ErrorCodes.CGROUP_GONE,
    `no cgroup cpu controller under ${cgroupfs}: neither cgroup2 (${cgroupfs}/cgroup.controllers), nor v1 cpu + cpuacct (cpu/cpu.cfs_quota_us, cpuacct/cpuacct.usage)${partial}, nor cgroup2 with "cpu" in ${unified}/cgroup.controllers`,
    { retryable: false },
  );
}

/**
 * Whether the layout's cpu controller can be used: always on v1 (detection found its files);
 * on v2 when the mount's `cgroup.controllers` lists `cpu` (a unified host may lack it, e.g.
 * in a container the parent did not delegate it to).
 */
export const hasCpuController = (layout: CgroupLayout): boolean =>
  layout.version === 1 || controllersOf(layout.root).includes("cpu");

/**
 * "weir/web", "/weir/web/", "./weir//web" -> "weir/web". Refuses ".." so a path cannot leave
 * the root (CONFIG_INVALID: config validation refuses it first).
 */
export function normalizeCgroupPath(cgroupPath: string): string {
  const parts = cgroupPath.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `cgroup path must stay under the cgroup root (no ".."): current value is ${JSON.stringify(cgroupPath)}`,
    );
  return parts.join("/");
}

/** A cgroup path's directory under one hierarchy's root ("" = the root cgroup itself). */
export function cgroupDir(root: string, cgroupPath: string): string {
  const rel = normalizeCgroupPath(cgroupPath);
  return rel === "" ? root : path.join(root, rel);
}
