// The few cgroup operations the testbed needs (find a layout with a cpu controller, put a
// process in, list members, pin them to CPUs, enable +cpu, give a v1 cpuset its parent's CPUs,
// set the group's share). Where the hierarchies are and
// how weight and shares convert is src/cgroup's; the root is injectable so tests use fixture
// trees.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CgroupLayout,
  cgroupDir,
  detectCgroupLayout,
  hasCpuController,
} from "../cgroup/layout.ts";
import { cgroupDirs, partitionCgroup } from "../cgroup/paths.ts";
import { sharesToWeight } from "../cgroup/values.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
};

/**
 * This host's layout (src/cgroup), which the testbed needs with a usable cpu controller:
 * TESTBED error when there is none (a cgroup2 root that does not list "cpu", or no cgroup
 * cpu hierarchy at all).
 */
export function detectTestbedLayout(root = "/sys/fs/cgroup"): CgroupLayout {
  let layout: CgroupLayout;
  try {
    layout = detectCgroupLayout(root);
  } catch (e) {
    throw new WeirError(ErrorCodes.TESTBED, (e as Error).message, { cause: e });
  }
  if (!hasCpuController(layout))
    throw new WeirError(
      ErrorCodes.TESTBED,
      `no cgroup cpu controller under ${root}: the cgroup2 mount ${layout.root} does not list "cpu" in cgroup.controllers`,
    );
  return layout;
}

/** v1: the cpuset hierarchy's root beside the cpu one, or null (v2, or no v1 cpuset mounted). */
export function v1CpusetRoot(layout: CgroupLayout): string | null {
  if (layout.version !== 1) return null;
  const root = join(layout.root, "cpuset");
  return existsSync(join(root, "cpuset.cpus")) ? root : null;
}

/**
 * A testbed cgroup path's directories: one per cpu hierarchy (src/cgroup's `cgroupDirs`), plus
 * on v1 one in the cpuset hierarchy where it is mounted — as a container runtime makes them —
 * so that weir's placement has a cpuset.cpus to write (on v2 the cpuset controller is enabled
 * for the testbed's subtree instead: `enableController`).
 */
export function testbedCgroupDirs(layout: CgroupLayout, rel: string): string[] {
  const cpuset = v1CpusetRoot(layout);
  const dirs = cgroupDirs(layout, rel);
  return cpuset === null ? dirs : [...dirs, cgroupDir(cpuset, rel)];
}

/**
 * v1: a new cpuset holds no CPU and no memory node, and no task can join it until it does.
 * Give `dir` its parent's where it has none (also one an earlier run made and stopped before
 * filling). Not a cpuset directory: nothing to do.
 */
export function fillCpuset(dir: string): void {
  for (const f of ["cpuset.cpus", "cpuset.mems"]) {
    const file = join(dir, f);
    const now = readText(file);
    if (now === null || now.trim() !== "") continue;
    const parent = (readText(join(dir, "..", f)) ?? "").trim();
    try {
      writeFileSync(file, parent);
    } catch (e) {
      throw new WeirError(
        ErrorCodes.CGROUP_WRITE_FAILED,
        `cannot write ${JSON.stringify(parent)} (its parent's) to ${file}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
}

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
 * Pin every thread of every process in `dirs` (one partition's cgroup dirs; a process listed
 * in several is pinned once) to `cpus` (a CPU list, "1" or "0-1") with util-linux's
 * `taskset -a -p -c`; returns each pid with its list before, to undo. Pinning the server's pid
 * alone is not enough: a server started from the TypeScript sources (tsx) whose modules were
 * not in tsx's cache yet has esbuild's service process as a child in the same cgroups, started
 * before any pin on every CPU, and weir's reachable CPUs are the union of the affinity of every
 * thread in the cgroup. A process that exits meanwhile is skipped.
 */
export function pinCgroupMembers(dirs: readonly string[], cpus: string): Array<[number, string]> {
  const pids = [...new Set(dirs.flatMap(cgroupProcs))];
  const before: Array<[number, string]> = [];
  for (const pid of pids) {
    let out: string;
    try {
      out = execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      if (!existsSync(`/proc/${pid}`)) continue;
      throw new WeirError(
        ErrorCodes.TESTBED,
        `cannot pin pid ${pid} to CPUs ${cpus}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const m = /current affinity list: (\S+)/.exec(out);
    if (m) before.push([pid, m[1]!]);
  }
  return before;
}

/**
 * v2 only: a child of `parentDir` gets the cpu controller only if the parent's
 * cgroup.subtree_control has it. Enables "+cpu" there when missing.
 */
export function enableCpuController(parentDir: string): void {
  enableController(parentDir, "cpu");
}

/**
 * v2 only: enable `controller` for `parentDir`'s children (its cgroup.subtree_control) when
 * missing; CGROUP_WRITE_FAILED when the kernel refuses.
 */
export function enableController(parentDir: string, controller: string): void {
  const file = join(parentDir, "cgroup.subtree_control");
  const now = readText(file) ?? "";
  if (now.split(/\s+/).includes(controller)) return;
  try {
    writeFileSync(file, `+${controller}`);
  } catch (e) {
    throw new WeirError(
      ErrorCodes.CGROUP_WRITE_FAILED,
      `cannot enable ${controller} in ${file}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/**
 * Set the CPU share of a cgroup dir against its siblings: v1 cpu.shares in the cpu
 * hierarchy, v2 cpu.weight. (cpuacct dirs have no share.)
 */
export function setGroupShares(layout: CgroupLayout, rel: string, shares: number): void {
  const dir = partitionCgroup(layout, rel).cpu;
  const [file, value] =
    layout.version === 1
      ? [join(dir, "cpu.shares"), String(Math.round(shares))]
      : [join(dir, "cpu.weight"), String(sharesToWeight(shares))];
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
