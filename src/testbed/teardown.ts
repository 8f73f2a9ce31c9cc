// The steps of `testbedDown` (testbed.ts), also used by the VM testbed's `vmsDown`: find the
// testbed's processes (by recorded pid and start time, or by their tag) and remove a cgroup
// directory that may still hold some.
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupProcs } from "./cgroups.ts";
import { tagArg } from "./names.ts";
import { isAlive, pidsWithArgMatching, readCmdline, stopProcesses } from "./procs.ts";
import type { TestbedState } from "./state.ts";

export const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Pids of the testbed's processes: recorded pid (if still the same process), tagged members of its cgroups, tagged processes anywhere. */
export function testbedPids(state: TestbedState, procfs: string): number[] {
  const tags = testbedTags(state);
  const pids = new Set<number>();
  for (const r of state.resources) {
    if (r.kind === "process" && r.pid !== undefined && isAlive(r.pid, r.startTime, procfs))
      pids.add(r.pid);
    if (r.kind === "cgroup") {
      for (const pid of cgroupProcs(r.id)) if (isTagged(pid, tags, procfs)) pids.add(pid);
    }
  }
  for (const pid of pidsWithArgMatching((a) => tags.has(a), procfs).keys()) pids.add(pid);
  return [...pids];
}

function isTagged(pid: number, tags: Set<string>, procfs: string): boolean {
  return readCmdline(pid, procfs)?.some((a) => tags.has(a)) ?? false;
}

/** The tags of a testbed's recorded processes (their `--weir-tag=…` argument). */
export function testbedTags(state: TestbedState): Set<string> {
  return new Set(state.resources.filter((r) => r.kind === "process").map((r) => tagArg(r.id)));
}

/**
 * rmdir a cgroup dir; while it is busy (the kernel still lists exiting threads), stop the
 * processes in it that carry one of `tags` and retry (up to ~3 s). With no tags it only waits.
 * Child cgroups made inside it after the testbed made it (a benchmark's group for its load
 * generator, `<prefix>/gen`, left behind by a run that was killed) are removed first, deepest
 * first, when they hold no process: a cgroup with a child cannot be removed (EBUSY). A child
 * that still holds processes is left, and the error names them.
 */
export async function removeCgroup(
  dir: string,
  opts: { tags?: Set<string>; procfs?: string } = {},
): Promise<void> {
  const tags = opts.tags ?? new Set<string>();
  const procfs = opts.procfs ?? "/proc";
  for (let attempt = 0; ; attempt++) {
    if (!existsSync(dir)) return;
    try {
      removeEmptyChildren(dir);
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 30) {
        const members = cgroupProcs(dir);
        throw new WeirError(
          ErrorCodes.TESTBED,
          `cannot remove cgroup ${dir}: ${errMsg(e)}${members.length ? ` (still holds pids ${members.join(" ")})` : ""}`,
        );
      }
      const tagged = tags.size ? cgroupProcs(dir).filter((p) => isTagged(p, tags, procfs)) : [];
      if (tagged.length) await stopProcesses(tagged, { graceMs: 500, procfs });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** rmdir every child directory of a cgroup, deepest first, that holds no process. */
function removeEmptyChildren(dir: string): void {
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join(dir, d.name));
  } catch {
    return; // gone, or not readable: the rmdir says what is wrong
  }
  for (const child of children) {
    removeEmptyChildren(child);
    if (cgroupProcs(child).length > 0) continue;
    try {
      rmdirSync(child);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}
