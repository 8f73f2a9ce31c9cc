// Tear-down of a VM testbed from its record alone (also after the launcher was SIGKILLed):
// QEMU by pid + start time or by its `-name` tag, then taps (inside their namespaces),
// namespaces, cgroups (children first), files; the state file last.
import { existsSync, unlinkSync } from "node:fs";
import { ip, netnsExists } from "../testbed/net.ts";
import { requireRoot } from "../testbed/options.ts";
import { isAlive, pidsWithArg, stopProcesses } from "../testbed/procs.ts";
import { dropResource, teardownOrder, writeState } from "../testbed/state.ts";
import { errMsg, removeCgroup } from "../testbed/teardown.ts";
import { readVmState, splitLinkId } from "./state.ts";

export interface VmsDownReport {
  stateFile: string;
  removed: string[];
  killed: number[];
  failed: { what: string; error: string }[];
  clean: boolean;
}

/** Remove exactly what the record names, processes first; the state file last. */
export async function vmsDown(stateFile: string): Promise<VmsDownReport> {
  requireRoot("a VM testbed", "namespaces, taps, cgroups");
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
      report.failed.push({ what: `${r.kind} ${r.id}`, error: errMsg(e) });
    }
    writeState(st);
  }
  if (st.resources.length === 0) unlinkSync(stateFile);
  report.clean = st.resources.length === 0 && report.failed.length === 0;
  return report;
}
