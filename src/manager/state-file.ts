// The state file: lets a restarted manager resume smoothly (policy memory) and still restore
// the values it found before it first touched each partition. Written atomically (tmp + rename),
// so a crash mid-write leaves the previous file intact; a write that fails (a full disk) removes
// its partial temporary file, and a writer killed between the write and the rename leaves one
// that the next load removes (its pid is in the name and no longer runs).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { AllocationSnapshot } from "../actuators/types.ts";
import { normalizeCgroupPath } from "../cgroup/layout.ts";
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
  /**
   * Placement: each placed partition's cpuset.cpus as found before weir first wrote it, with the
   * cgroup it was found in (a string alone in a file written before weir recorded the cgroup).
   */
  foundCpusets?: Record<PartitionId, FoundCpuset | string>;
  /**
   * Cpusets found in cgroups no configured partition is on now that a start has not written back
   * yet (onShutdown: keep, a dry run, a failed write): kept until one does.
   */
  foundCpusetsUnmanaged?: Array<FoundCpuset & { partition: PartitionId }>;
}

/**
 * A cpuset.cpus as found before weir first wrote it, and where: a restarted weir gives it to the
 * partition on that cgroup now, and writes back that of a cgroup no partition is on (wiring.ts).
 */
export interface FoundCpuset {
  cpus: string;
  /** The cgroup it was found in (normalised); absent in a file written before weir recorded it. */
  cgroup?: string;
  /** The partition's `actuator` then. */
  actuator?: string;
}

/**
 * Entries found before weir first wrote a cgroup, matched to the configured partitions by the
 * cgroup they were found in, not by name; an entry from a file that did not record its cgroup
 * goes by name. `byCgroup`: those of cgroups no partition is on now; `byName`: those without a
 * cgroup whose name no partition has.
 */
export function matchByCgroup<E extends { partition: PartitionId; cgroup?: string }>(
  entries: readonly E[],
  partitions: ReadonlyArray<{ name: PartitionId; cgroup: string }>,
): { matched: Map<PartitionId, E>; byCgroup: E[]; byName: E[] } {
  const byCgroup = new Map<string, E>();
  const byName = new Map<PartitionId, E>();
  for (const e of entries) {
    if (typeof e.cgroup === "string") {
      // a cgroup is one partition's at a time; a later entry (unmanaged, saved after) is no newer
      if (!byCgroup.has(e.cgroup)) byCgroup.set(e.cgroup, e);
    } else if (!byName.has(e.partition)) byName.set(e.partition, e);
  }
  const matched = new Map<PartitionId, E>();
  for (const p of partitions) {
    const cgroup = normalizeCgroupPath(p.cgroup);
    const e = byCgroup.get(cgroup) ?? byName.get(p.name);
    if (!e) continue;
    if (e.cgroup === undefined) byName.delete(p.name);
    else byCgroup.delete(cgroup);
    matched.set(p.name, e);
  }
  return { matched, byCgroup: [...byCgroup.values()], byName: [...byName.values()] };
}

/** The state file's found values, those of its partitions and those of cgroups left. */
export function foundValueEntries(
  state: Pick<PersistedState, "found" | "foundUnmanaged">,
): FoundValues[] {
  const entries: FoundValues[] = [];
  const isEntry = (e: unknown): e is FoundValues =>
    typeof e === "object" && e !== null && typeof (e as FoundValues).values === "object";
  if (typeof state.found === "object" && state.found !== null)
    for (const [id, e] of Object.entries(state.found))
      if (isEntry(e)) entries.push({ ...e, partition: id });
  if (Array.isArray(state.foundUnmanaged))
    for (const e of state.foundUnmanaged) if (isEntry(e)) entries.push(e);
  return entries;
}

/** A found cpuset with the partition it was found for. */
export type FoundCpusetEntry = FoundCpuset & { partition: PartitionId };

/** The state file's found cpusets, those of its partitions and those of cgroups left. */
export function foundCpusetEntries(
  state: Pick<PersistedState, "foundCpusets" | "foundCpusetsUnmanaged">,
): FoundCpusetEntry[] {
  const entries: FoundCpusetEntry[] = [];
  if (typeof state.foundCpusets === "object" && state.foundCpusets !== null)
    for (const [id, e] of Object.entries(state.foundCpusets))
      if (typeof e === "string") entries.push({ partition: id, cpus: e });
      else if (typeof e === "object" && e !== null && typeof e.cpus === "string")
        entries.push({ ...e, partition: id });
  if (Array.isArray(state.foundCpusetsUnmanaged))
    for (const e of state.foundCpusetsUnmanaged)
      if (
        typeof e === "object" &&
        e !== null &&
        typeof e.cpus === "string" &&
        typeof e.partition === "string"
      )
        entries.push(e);
  return entries;
}

/**
 * The state file's found cpusets of the configured partitions, by partition name: each one's
 * that was found on its cgroup (by name where the file did not record the cgroup).
 */
export function foundCpusetsOf(
  state: Pick<PersistedState, "foundCpusets" | "foundCpusetsUnmanaged">,
  partitions: ReadonlyArray<{ name: PartitionId; cgroup: string }>,
): Record<PartitionId, string> {
  const out: Record<PartitionId, string> = {};
  for (const [id, e] of matchByCgroup(foundCpusetEntries(state), partitions).matched)
    out[id] = e.cpus;
  return out;
}

/** The state file's text for `state` (without the final newline). */
const stateText = (state: Omit<PersistedState, "version">): string =>
  JSON.stringify({ version: 1, ...state });

/**
 * `state` as a restart would read it back from the state file (a JSON round trip: nothing shared
 * with the objects it was made of), without the file: what a reload resumes from.
 */
export const asPersisted = (state: Omit<PersistedState, "version">): PersistedState =>
  JSON.parse(stateText(state)) as PersistedState;

export function saveState(path: string, state: Omit<PersistedState, "version">): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${stateText(state)}\n`);
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
