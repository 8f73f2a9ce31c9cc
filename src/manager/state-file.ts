// The state file: lets a restarted manager resume smoothly (policy memory) and still restore
// the values it found before it first touched each partition. Written atomically (tmp + rename),
// so a crash mid-write leaves the previous file intact; a write that fails (a full disk) removes
// its partial temporary file, and a writer killed between the write and the rename leaves one
// that the next load removes (its pid is in the name and no longer runs).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { AllocationSnapshot } from "../actuators/types.ts";
import type { PartitionId } from "../core/model.ts";
import type { PolicyState } from "../policy/types.ts";

/**
 * A partition's values as found before weir first wrote them, and where they were found: a
 * restarted weir gives them to the partition on that cgroup now (renamed or not), and writes
 * back those of a cgroup no partition is on any more (wiring.ts).
 */
export interface FoundValues extends AllocationSnapshot {
  /** The cgroup they were found in (normalised); absent in a file written before weir recorded it. */
  cgroup?: string;
  /** The partition's `actuator` then. */
  actuator?: string;
}

export interface PersistedState {
  version: 1;
  savedAtMs: number;
  policyState: PolicyState;
  found: Record<PartitionId, FoundValues>;
  /**
   * Values found in cgroups no configured partition is on (a partition removed from the config
   * or moved to another cgroup) that a start has not written back yet (onShutdown: keep, a dry
   * run, a failed write): kept until one does.
   */
  foundUnmanaged?: FoundValues[];
  /** Placement: each placed partition's cpuset.cpus as found before weir first wrote it. */
  foundCpusets?: Record<PartitionId, string>;
}

export function saveState(path: string, state: Omit<PersistedState, "version">): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify({ version: 1, ...state })}\n`);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Remove `<state file>.tmp-<pid>` files whose writer no longer runs (killed between its write and
 * its rename). A live writer's file is left alone. Returns the names removed.
 */
export function removeStaleTemporaries(path: string): string[] {
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || running(pid)) continue;
    rmSync(join(dirname(path), name), { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Load a state file; a missing or unreadable one means a fresh start (returns null and why).
 * Temporary files left by a writer that was killed mid-save are removed first.
 */
export function loadState(path: string): { state: PersistedState | null; note: string } {
  const swept = removeStaleTemporaries(path);
  const sweptNote = swept.length
    ? ` (removed ${swept.length} temporary file${swept.length === 1 ? "" : "s"} left by a killed writer)`
    : "";
  const r = readState(path);
  return { state: r.state, note: r.note + sweptNote };
}

/**
 * Read a state file and nothing else (`weir validate`, which touches nothing: loadState also
 * removes a killed writer's temporary files); a missing or unreadable one gives null and why.
 */
export function readState(path: string): { state: PersistedState | null; note: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return { state: null, note: `no state file at ${path}: fresh start` };
  }
  try {
    const s = JSON.parse(text) as PersistedState;
    if (s.version !== 1 || typeof s.policyState !== "object" || typeof s.found !== "object")
      return { state: null, note: `state file ${path} has an unknown shape: ignored, fresh start` };
    return {
      state: s,
      note: `resumed from ${path} saved at ${new Date(s.savedAtMs).toISOString()}`,
    };
  } catch {
    return { state: null, note: `state file ${path} is not valid JSON: ignored, fresh start` };
  }
}
