// System activity counters: a cgroup's CPU usage and CFS throttling, on cgroup v1
// (cpuacct.usage + cpu/cpu.stat) or v2 (cpu.stat), detected per path.
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { type FailureClassifier, HeldFile, isStaleError } from "./held-file.ts";
import { type CpuCounters, parseCounterValue, parseCpuStatV1, parseCpuStatV2 } from "./parse.ts";

/**
 * Where one cgroup's CPU files are.
 * - v1: `cpuDir` = `<cgroupfs>/cpu/<path>` (cpu.stat, cpu.cfs_quota_us, cpu.shares),
 *   `cpuacctDir` = `<cgroupfs>/cpuacct/<path>` (cpuacct.usage). Both may be one directory
 *   where the hierarchies are co-mounted (`cpu,cpuacct`).
 * - v2: `dir` = `<cgroupfs>/<path>` on a unified host, or `<cgroupfs>/unified/<path>` on a
 *   hybrid one (cpu.stat; cpu.max and cpu.weight only where the cpu controller is enabled).
 */
export type CgroupLayout =
  | { version: 1; cpuDir: string; cpuacctDir: string }
  | { version: 2; dir: string };

/** "weir/web", "/weir/web/" -> "weir/web". Rejects ".." so a path cannot leave the root. */
export function normalizeCgroupPath(cgroupPath: string): string {
  const parts = cgroupPath.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `cgroup path must not contain "..": current value is ${JSON.stringify(cgroupPath)}`,
    );
  return parts.join("/");
}

const isDir = (p: string): boolean => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};
const isFile = (p: string): boolean => {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

/**
 * Finds a cgroup's CPU files. Order: v1 (both cpu and cpuacct hold the path), then v2 at
 * the root (`<cgroupfs>/cgroup.controllers` exists), then v2 at `<cgroupfs>/unified`.
 * v1 wins on a hybrid host because that is where the cpu controller is.
 * Throws CGROUP_GONE (terminal) when none holds the path.
 */
export function detectCgroupLayout(cgroupfs: string, cgroupPath: string): CgroupLayout {
  const rel = normalizeCgroupPath(cgroupPath);
  const cpuDir = path.join(cgroupfs, "cpu", rel);
  const cpuacctDir = path.join(cgroupfs, "cpuacct", rel);
  const hasCpu = isDir(cpuDir) && isFile(path.join(cpuDir, "cgroup.procs"));
  const hasCpuacct = isFile(path.join(cpuacctDir, "cpuacct.usage"));
  if (hasCpu && hasCpuacct) return { version: 1, cpuDir, cpuacctDir };
  for (const root of [cgroupfs, path.join(cgroupfs, "unified")]) {
    const dir = path.join(root, rel);
    if (isFile(path.join(root, "cgroup.controllers")) && isFile(path.join(dir, "cpu.stat")))
      return { version: 2, dir };
  }
  const partial =
    hasCpu || hasCpuacct
      ? ` (v1: found ${hasCpu ? cpuDir : cpuacctDir} but not ${hasCpu ? `${cpuacctDir}/cpuacct.usage` : cpuDir}; a v1 partition needs both the cpu and the cpuacct hierarchy)`
      : "";
  throw new WeirError(
    ErrorCodes.CGROUP_GONE,
    `cgroup ${JSON.stringify(rel)} not found under ${cgroupfs} (looked for v1 cpu+cpuacct, v2, v2 at unified/)${partial}`,
    { retryable: false },
  );
}

/** The files a cgroup's CPU sample reads, by layout. */
export const cpuCounterFiles = (layout: CgroupLayout): string[] =>
  layout.version === 1
    ? [path.join(layout.cpuacctDir, "cpuacct.usage"), path.join(layout.cpuDir, "cpu.stat")]
    : [path.join(layout.dir, "cpu.stat")];

/** A vanished cgroup file is CGROUP_GONE (terminal); anything else is retryable. */
export const cgroupFailure =
  (cgroupPath: string): FailureClassifier =>
  (file, err) =>
    isStaleError(err)
      ? new WeirError(
          ErrorCodes.CGROUP_GONE,
          `cgroup ${cgroupPath} is gone (${file}: ${err.code})`,
          {
            retryable: false,
            cause: err,
          },
        )
      : new WeirError(ErrorCodes.COUNTER_UNREADABLE, `cannot read ${file}: ${err.code}`, {
          retryable: true,
          cause: err,
        });

/** A cgroup's CPU counters on held descriptors (v1: two files, v2: one). */
export class HeldCgroupCpuCounters {
  readonly layout: CgroupLayout;
  private readonly files: HeldFile[];

  constructor(cgroupfs: string, cgroupPath: string, layout?: CgroupLayout) {
    this.layout = layout ?? detectCgroupLayout(cgroupfs, cgroupPath);
    const opts = { reopenOnStale: true, classify: cgroupFailure(cgroupPath) };
    this.files = [];
    try {
      for (const file of cpuCounterFiles(this.layout))
        this.files.push(
          new HeldFile(file, { ...opts, sizeHint: file.endsWith(".usage") ? 32 : 512 }),
        );
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(): CpuCounters {
    const [a, b] = this.files;
    if (this.layout.version === 2) return parseCpuStatV2(a!.read(), a!.path);
    const usageNs = parseCounterValue(a!.read(), a!.path);
    return { usageNs, ...parseCpuStatV1(b!.read(), b!.path) };
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** One-off read (open-read-close) of a cgroup's CPU counters. */
export function readCgroupCpuCounters(cgroupfs: string, cgroupPath: string): CpuCounters {
  const c = new HeldCgroupCpuCounters(cgroupfs, cgroupPath);
  try {
    return c.read();
  } finally {
    c.close();
  }
}
