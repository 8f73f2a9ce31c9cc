// Capacity against the CPUs a partition can really run on. Capacity is managed CPUs minus the
// reserve (capacity.cpus may say more CPUs than the host has online), and a partition's
// cpuset may hold fewer CPUs than that: weir could then entitle it CPU it can never use.
// Found at start and in `weir validate`, reported as warnings; it never stops weir.
import { normalizeCgroupPath } from "../cgroup/layout.ts";
import { formatCpuList } from "../cgroup/values.ts";
import type { PartitionId, PartitionSpec } from "../core/model.ts";
import { type CpuMillis, cpuMillisFromCores } from "../core/units.ts";
import { type PartitionCpus, readPartitionCpus } from "../sensors/cpuset.ts";
import { parseCpuList } from "../sensors/parse.ts";
import type { Roots } from "../sensors/types.ts";
import type { Config } from "./config.ts";
import { foundCpusetsOf, readState } from "./state-file.ts";
import type { Wired } from "./wiring.ts";

export { formatCpuList };

export interface CpusShortfall {
  partition: PartitionId;
  /** CPU numbers the partition can run on, ascending. */
  cpus: number[];
  /** Where the list came from (cpuset file ∩ online CPUs, or the online CPUs). */
  cpusSource: string;
  /** What those CPUs give: 1000m per CPU. */
  cpusCpuMillis: CpuMillis;
  capacityCpuMillis: CpuMillis;
  /** The most weir may entitle the partition: its max, at most the capacity. */
  maxCpuMillis: CpuMillis;
  /** One line for the log and `weir validate`. */
  message: string;
}

/**
 * The partitions weir may entitle to more CPU than their CPUs give: those whose max (at most
 * the capacity) is above 1000m × their CPU count. A partition whose CPUs are unknown (null)
 * is left out. Pure.
 */
export function cpusShortfalls(
  specs: readonly PartitionSpec[],
  cpusOf: ReadonlyMap<PartitionId, PartitionCpus | null>,
  capacityCpuMillis: CpuMillis,
): CpusShortfall[] {
  const out: CpusShortfall[] = [];
  for (const spec of specs) {
    const found = cpusOf.get(spec.id);
    if (!found) continue;
    const cpusCpuMillis = cpuMillisFromCores(found.cpus.length);
    const maxCpuMillis = Math.min(spec.maxCpuMillis, capacityCpuMillis);
    if (maxCpuMillis <= cpusCpuMillis) continue;
    const list = found.cpus.length === 0 ? "no CPU" : `CPUs ${formatCpuList(found.cpus)}`;
    const upTo =
      maxCpuMillis < capacityCpuMillis
        ? `its max ${maxCpuMillis}m (capacity ${capacityCpuMillis}m)`
        : `the capacity ${capacityCpuMillis}m`;
    out.push({
      partition: spec.id,
      cpus: found.cpus,
      cpusSource: found.source,
      cpusCpuMillis,
      capacityCpuMillis,
      maxCpuMillis,
      message:
        `${spec.id}: runs on ${list} (${cpusCpuMillis}m, from ${found.source}) but may be ` +
        `entitled up to ${upTo}: an entitlement above ${cpusCpuMillis}m cannot be used ` +
        "(lower capacity.cpus or the partition's max, or widen its cpuset)",
    });
  }
  return out;
}

/**
 * The CPUs a partition's cgroup gave it with `found` in its cpuset.cpus (the value placement
 * found before weir first wrote it): an empty one takes its parent's CPUs (cgroup v2), a list
 * is intersected with them (the parent's effective cpuset ∩ online, or the online CPUs). Null
 * when `found` is not a CPU list or nothing can be read. Never throws.
 */
export function foundPartitionCpus(
  roots: Pick<Roots, "cgroupfs" | "sysfs">,
  cgroupPath: string,
  found: string,
): PartitionCpus | null {
  try {
    const rel = normalizeCgroupPath(cgroupPath);
    const parent = readPartitionCpus(roots, rel.split("/").slice(0, -1).join("/"));
    const text = found.trim();
    if (text === "")
      return (
        parent && {
          cpus: parent.cpus,
          source: `${parent.source} (its cpuset.cpus as found: empty)`,
        }
      );
    const listed = parseCpuList(text, "cpuset.cpus");
    const asFound = `cpuset.cpus "${text}" as found before weir placed it (state file)`;
    if (parent === null) return { cpus: listed, source: asFound };
    const of = new Set(parent.cpus);
    return { cpus: listed.filter((c) => of.has(c)), source: `${asFound} ∩ ${parent.source}` };
  } catch {
    return null;
  }
}

/** `wider` holds every CPU of `than` and more. */
const widerThan = (wider: readonly number[], than: readonly number[]): boolean =>
  wider.length > than.length && than.every((c) => wider.includes(c));

/**
 * Reads each partition's CPUs (its cgroup's effective cpuset, else the online CPUs) and
 * returns the shortfalls. Never throws: a partition whose CPUs cannot be read is left out.
 *
 * `foundCpusets` (placement in force: what each placed partition's cpuset.cpus held before weir
 * first wrote it, from the state file): where the CPUs it gave are wider than the cpuset's now,
 * those are judged — the narrower one is weir's own placement, left by a run that was killed
 * (or kept its values), and placement widens or restores it.
 */
export function checkPartitionCpus(
  partitions: ReadonlyArray<{ name: string; cgroup: string }>,
  specs: readonly PartitionSpec[],
  capacityCpuMillis: CpuMillis,
  roots: Pick<Roots, "cgroupfs" | "sysfs">,
  foundCpusets?: Readonly<Record<PartitionId, string>>,
): CpusShortfall[] {
  const cpusOf = new Map<PartitionId, PartitionCpus | null>();
  for (const p of partitions) {
    let now: PartitionCpus | null;
    try {
      now = readPartitionCpus(roots, p.cgroup);
    } catch {
      now = null;
    }
    const found = foundCpusets?.[p.name];
    if (now !== null && found !== undefined) {
      const was = foundPartitionCpus(roots, p.cgroup, found);
      if (was !== null && widerThan(was.cpus, now.cpus)) now = was;
    }
    cpusOf.set(p.name, now);
  }
  return cpusShortfalls(specs, cpusOf, capacityCpuMillis);
}

/**
 * The check as a started `weir run` makes it (startManager, `--once`), on the manager built for
 * `cfg`: with placement in force, a placed partition's cpuset as found before weir first wrote it
 * (the state file's, kept by the manager) is judged where it was wider — a cpuset narrowed by a
 * killed run is weir's own, and placement widens or restores it. Without placement, buildManager
 * has written those back already. Never throws.
 */
export function startCpusShortfalls(
  cfg: Pick<Config, "partitions" | "roots">,
  wired: Pick<Wired, "manager" | "capacityCpuMillis" | "placement">,
): CpusShortfall[] {
  return checkPartitionCpus(
    cfg.partitions,
    wired.manager.specs(),
    wired.capacityCpuMillis,
    cfg.roots,
    wired.placement.inForce ? wired.manager.foundCpusets() : undefined,
  );
}

/**
 * The check for a config not started (`weir validate`), judged as a start of `weir run` would
 * judge it: each cpuset the state file says a killed run placed (the file is read, nothing is
 * written) is judged as found where it was wider, since a start puts it back — placement in
 * force widens or restores it, and without placement buildManager writes it back. Never throws.
 */
export function configCpusShortfalls(
  cfg: Pick<Config, "partitions" | "roots" | "stateFile">,
  specs: readonly PartitionSpec[],
  capacityCpuMillis: CpuMillis,
): CpusShortfall[] {
  return checkPartitionCpus(cfg.partitions, specs, capacityCpuMillis, cfg.roots, stateFound(cfg));
}

/** The state file's found cpusets of `cfg`'s partitions (each on the cgroup it was found in). */
function stateFound(
  cfg: Pick<Config, "partitions" | "stateFile">,
): Record<PartitionId, string> | undefined {
  const state = cfg.stateFile ? readState(cfg.stateFile).state : null;
  return state ? foundCpusetsOf(state, cfg.partitions) : undefined;
}
