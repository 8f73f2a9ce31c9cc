// cgroup layout detection and the few cgroup operations the testbed needs (mkdir, put a
// process in, list members, rmdir). The root is injectable so tests use fixture trees.
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";

export type CgroupLayout =
  /**
   * v1: cpu and cpuacct are separate hierarchies (may be the same dir when co-mounted).
   * `unified`: the cgroup2 mount of a hybrid host (no cpu controller there), where each
   * partition also gets a cgroup so its CPU pressure (cpu.pressure) can be read.
   */
  | { version: 1; root: string; cpu: string; cpuacct: string; unified?: string }
  | { version: 2; root: string };

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
};

/**
 * v2 when the root is a cgroup2 mount whose cgroup.controllers lists "cpu"; otherwise v1
 * when cpu (cfs quota) and cpuacct (usage) hierarchies exist under the root; otherwise v2
 * at <root>/unified if that lists "cpu". A hybrid host whose cgroup2 mount lacks the cpu
 * controller (this one) is v1. Relative cgroup paths are relative to the hierarchy dirs.
 */
export function detectCgroupLayout(root = "/sys/fs/cgroup"): CgroupLayout {
  const hasCpu = (dir: string) =>
    readText(join(dir, "cgroup.controllers"))?.split(/\s+/).includes("cpu") ?? false;
  if (hasCpu(root)) return { version: 2, root };
  const cpu = join(root, "cpu");
  const cpuacct = join(root, "cpuacct");
  const unified = join(root, "unified");
  if (existsSync(join(cpu, "cpu.cfs_quota_us")) && existsSync(join(cpuacct, "cpuacct.usage"))) {
    return existsSync(join(unified, "cgroup.controllers"))
      ? { version: 1, root, cpu, cpuacct, unified }
      : { version: 1, root, cpu, cpuacct };
  }
  // Hybrid host whose cpu controller sits on the cgroup2 mount at <root>/unified.
  if (hasCpu(unified)) return { version: 2, root: unified };
  throw new WeirError(
    ErrorCodes.TESTBED,
    `no cgroup cpu controller under ${root}: neither cgroup2 with "cpu" in cgroup.controllers nor v1 cpu + cpuacct hierarchies`,
  );
}

/** The hierarchy dirs a partition lives in: v1 cpu and cpuacct (once if co-mounted) and the hybrid host's cgroup2 mount, v2 the root. */
export function hierarchies(layout: CgroupLayout): string[] {
  if (layout.version === 2) return [layout.root];
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const v1 =
    real(layout.cpu) === real(layout.cpuacct) ? [layout.cpu] : [layout.cpu, layout.cpuacct];
  return layout.unified === undefined ? v1 : [...v1, layout.unified];
}

/** Absolute dirs of a cgroup path relative to the root ("weir/p1"), one per hierarchy. */
export const cgroupDirs = (layout: CgroupLayout, rel: string): string[] =>
  hierarchies(layout).map((h) => join(h, rel));

/** Pids in a cgroup dir (empty when it does not exist). */
export function cgroupProcs(dir: string): number[] {
  const text = readText(join(dir, "cgroup.procs"));
  if (text === null) return [];
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * v2 only: a child of `parentDir` gets the cpu controller only if the parent's
 * cgroup.subtree_control has it. Enables "+cpu" there when missing.
 */
export function enableCpuController(parentDir: string): void {
  const file = join(parentDir, "cgroup.subtree_control");
  const now = readText(file) ?? "";
  if (now.split(/\s+/).includes("cpu")) return;
  try {
    writeFileSync(file, "+cpu");
  } catch (e) {
    throw new WeirError(
      ErrorCodes.CGROUP_WRITE_FAILED,
      `cannot enable cpu in ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000): 1024 -> 100. */
export const weightFromShares = (shares: number): number =>
  Math.min(10_000, Math.max(1, Math.round((shares * 100) / 1024)));

/**
 * Set the CPU share of a cgroup dir against its siblings: v1 cpu.shares in the cpu
 * hierarchy, v2 cpu.weight. (cpuacct dirs have no share.)
 */
export function setGroupShares(layout: CgroupLayout, rel: string, shares: number): void {
  const [file, value] =
    layout.version === 1
      ? [join(layout.cpu, rel, "cpu.shares"), String(Math.round(shares))]
      : [join(layout.root, rel, "cpu.weight"), String(weightFromShares(shares))];
  try {
    writeFileSync(file, value);
  } catch (e) {
    throw new WeirError(
      ErrorCodes.CGROUP_WRITE_FAILED,
      `cannot write ${value} to ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}
