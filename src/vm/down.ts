// Tear-down of a VM testbed from its record alone (also after the launcher was SIGKILLed):
// QEMU by pid + start time or by its `-name` tag, then taps (inside their namespaces),
// namespaces, cgroups (children first), files; the state file last.
import { existsSync, rmdirSync, unlinkSync } from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { cgroupProcs } from "../testbed/cgroups.ts";
import { ip, netnsExists } from "../testbed/net.ts";
import { isAlive, pidsWithArg, stopProcesses } from "../testbed/procs.ts";
import { dropResource, teardownOrder, writeState } from "../testbed/state.ts";
import { readVmState, splitLinkId } from "./state.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function requireRoot(): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    throw new WeirError(ErrorCodes.NOT_ROOT, "a VM testbed needs root (namespaces, taps, cgroups)");
}

export interface VmsDownReport {
  stateFile: string;
  removed: string[];
  killed: number[];
  failed: { what: string; error: string }[];
  clean: boolean;
}

/** Remove exactly what the record names, processes first; the state file last. */
export async function vmsDown(stateFile: string): Promise<VmsDownReport> {
  requireRoot();
  const report: VmsDownReport = { stateFile, removed: [], killed: [], failed: [], clean: true };
  const st = readVmState(stateFile);
  if (!st) return report;
  const pids = new Set<number>();
  for (const r of st.resources) {
    if (r.kind !== "process") continue;
    if (r.pid !== undefined && isAlive(r.pid, r.startTime)) pids.add(r.pid);
    for (const p of pidsWithArg(r.id)) pids.add(p); // started just before a crash, pid unrecorded
  }
  const left = await stopProcesses([...pids], { graceMs: 3000 });
  report.killed = [...pids].filter((p) => !left.includes(p));
  for (const p of left) report.failed.push({ what: `process ${p}`, error: "alive after SIGKILL" });

  for (const r of teardownOrder(st.resources)) {
    try {
      switch (r.kind) {
        case "process":
          if (r.pid !== undefined && isAlive(r.pid, r.startTime))
            throw new Error(`pid ${r.pid} still alive`);
          break;
        case "link": {
          const { netns, ifname } = splitLinkId(r.id);
          if (netns === null || netnsExists(netns)) {
            const args = netns === null ? [] : ["-n", netns];
            const shown = await ip([...args, "-o", "link", "show"]);
            if (shown.split("\n").some((l) => l.split(":")[1]?.trim().split("@")[0] === ifname))
              await ip([...args, "link", "del", ifname]);
          }
          break;
        }
        case "netns":
          if (netnsExists(r.id)) await ip(["netns", "del", r.id]);
          break;
        case "cgroup":
          await removeCgroup(r.id);
          break;
        case "file":
          if (existsSync(r.id)) unlinkSync(r.id);
          break;
      }
      report.removed.push(`${r.kind} ${r.id}`);
      dropResource(st, r);
    } catch (e) {
      report.failed.push({ what: `${r.kind} ${r.id}`, error: (e as Error).message });
    }
    writeState(st);
  }
  if (st.resources.length === 0) unlinkSync(stateFile);
  report.clean = st.resources.length === 0 && report.failed.length === 0;
  return report;
}

/** rmdir, retrying while the kernel still lists exiting threads in it (up to ~3 s). */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (!existsSync(dir)) return;
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 30)
        throw new WeirError(
          ErrorCodes.TESTBED,
          `cannot remove cgroup ${dir}: ${(e as Error).message} (pids ${cgroupProcs(dir).join(" ") || "none"})`,
        );
      await sleep(100);
    }
  }
}
