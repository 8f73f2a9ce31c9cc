// The steps of `testbedDown` (testbed.ts): find the testbed's processes (by recorded pid and
// start time, or by their tag) and remove a cgroup directory that may still hold some.
import { existsSync, rmdirSync } from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupProcs } from "./cgroups.ts";
import { tagArg } from "./names.ts";
import { isAlive, pidsWithArgMatching, readCmdline, stopProcesses } from "./procs.ts";
import type { TestbedState } from "./state.ts";

export const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Pids of the testbed's processes: recorded pid (if still the same process), tagged members of its cgroups, tagged processes anywhere. */
export function testbedPids(state: TestbedState, procfs: string): number[] {
  const tags = new Set(
    state.resources.filter((r) => r.kind === "process").map((r) => tagArg(r.id)),
  );
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

/** rmdir a cgroup dir; while it is busy, stop tagged processes still in it and retry (up to ~3 s). */
export async function removeCgroup(
  dir: string,
  state: TestbedState,
  procfs: string,
): Promise<void> {
  const tags = new Set(
    state.resources.filter((r) => r.kind === "process").map((r) => tagArg(r.id)),
  );
  for (let attempt = 0; ; attempt++) {
    if (!existsSync(dir)) return;
    try {
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
      const tagged = cgroupProcs(dir).filter((p) => isTagged(p, tags, procfs));
      if (tagged.length) await stopProcesses(tagged, { graceMs: 500, procfs });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
}
