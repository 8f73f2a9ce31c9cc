// Checks across fields of the config, returning structured issues ({field, rule, message,
// value}): the partitions' cgroup paths together, the reserve against the managed CPUs, and a
// partition's bounds under the names core/bounds.ts checks them by.
import { normalizeCgroupPath } from "../cgroup/layout.ts";
import type { BoundField, BoundsCandidate, BoundsIssue } from "../core/bounds.ts";
import type { CpuMillis } from "../core/units.ts";

/** A problem with one partition's `cgroup`: which partition, in the structured bounds style. */
export interface CgroupPathIssue extends BoundsIssue {
  index: number;
}

/**
 * Check the partitions' cgroup paths together, after normalisation (`weir/web`, `/weir/web`,
 * `weir//web` and `weir/./web` are one directory): each must name a cgroup below the root,
 * no two may be the same directory, and none may lie inside another (a parent's cap would
 * bound its child's, and its usage would count the child's twice). The later partition of a
 * pair is blamed. `weir` + `weir/web` → partitions[1]: cgroup, nested-cgroup, "weir/web".
 */
export function checkCgroupPaths(
  paths: readonly string[],
  /** Where the hierarchies are mounted (`roots.cgroupfs`): an absolute path under it is refused. */
  cgroupfs = "/sys/fs/cgroup",
): CgroupPathIssue[] {
  const issues: CgroupPathIssue[] = [];
  const seen: Array<{ index: number; path: string }> = [];
  const mount = normalizeCgroupPath(cgroupfs);
  paths.forEach((raw, index) => {
    let path: string;
    try {
      path = normalizeCgroupPath(raw);
    } catch {
      return; // ".." is the field's own rule (cgroup-path), reported where it is parsed
    }
    const issue = (rule: string, message: string) =>
      issues.push({ field: "cgroup", rule, message, value: raw, index });
    // "/sys/fs/cgroup/cpu/weir/web" would be read as "<root>/sys/fs/cgroup/cpu/weir/web", a
    // cgroup that is never there: the partition would only ever be gone
    if (
      mount !== "" &&
      raw.trimStart().startsWith("/") &&
      (path === mount || path.startsWith(`${mount}/`))
    ) {
      const below = relativeHint(path.slice(mount.length + 1));
      issue(
        "cgroup-relative",
        `must be the path below the cgroup root, not the absolute path of its directory under ${cgroupfs}` +
          (below === "" ? "" : ` (write "${below}")`),
      );
      return;
    }
    if (path === "") {
      issue("cgroup-below-root", "must name a cgroup below the cgroup root, not the root itself");
      return;
    }
    const same = seen.find((o) => o.path === path);
    const outer = seen.find((o) => path.startsWith(`${o.path}/`));
    const inner = seen.find((o) => o.path.startsWith(`${path}/`));
    if (same)
      issue(
        "unique-cgroup",
        `must be unique: partitions[${same.index}].cgroup is the same directory ("${path}")`,
      );
    else if (outer)
      issue(
        "nested-cgroup",
        `must not lie inside another partition's cgroup: partitions[${outer.index}].cgroup is "${outer.path}"`,
      );
    else if (inner)
      issue(
        "nested-cgroup",
        `must not contain another partition's cgroup: partitions[${inner.index}].cgroup is "${inner.path}"`,
      );
    seen.push({ index, path });
  });
  return issues;
}

/** Hierarchy directories under the cgroupfs: v1 controllers (`cpu,cpuacct` co-mounted), a hybrid host's cgroup2. */
const HIERARCHIES = new Set([
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "blkio",
  "perf_event",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
  "unified",
  "systemd",
]);

/**
 * What to write instead of a path under the cgroupfs: without the hierarchy's directory when
 * it names one (`cpu/weir/web`, `cpu,cpuacct/weir/web`, `unified/weir/web` -> `weir/web`).
 */
function relativeHint(rest: string): string {
  const [first = "", ...more] = rest.split("/");
  const isHierarchy = first.split(",").every((c) => HIERARCHIES.has(c));
  return isHierarchy && more.length > 0 ? more.join("/") : rest;
}

/**
 * The reserve must leave capacity to share: below the managed CPUs. 2 CPUs with a 2000m
 * reserve → reserve-lt-cpus, value 2000 (capacity 0 would pin everyone to the quota floor).
 */
export function checkReserve(
  managedCpuMillis: CpuMillis,
  reserveCpuMillis: CpuMillis,
): BoundsIssue | null {
  if (reserveCpuMillis < managedCpuMillis) return null;
  return {
    field: "capacity.reserve",
    rule: "reserve-lt-cpus",
    message: `must be below the managed CPUs (${managedCpuMillis}m)`,
    value: reserveCpuMillis,
  };
}

/** A partition's bounds under the names the spec uses, for checkPartitionBounds. */
export function boundsOf(p: {
  min: number;
  max?: number | undefined;
  weight: number;
  importance: number;
}): BoundsCandidate {
  return {
    bounds: {
      minCpuMillis: p.min,
      maxCpuMillis: p.max,
      weight: p.weight,
      importance: p.importance,
    },
  };
}

/** The config's name for a bound: `min`, `max`, `weight`, `importance`. */
export function configFieldOf(field: BoundField): string {
  return field === "minCpuMillis" ? "min" : field === "maxCpuMillis" ? "max" : field;
}
