// Partitions found in the cgroup tree (`discover:`): each template names a cgroup path whose
// segments may hold `*`, and every directory that matches it in the cpu controller's hierarchy
// becomes a partition with the template's fields, its name made from what the `*`s matched.
// No schema library here (the templates were validated apart: config-discover.ts), so `weir
// run` expands them itself at start and whenever its watcher sees the matches change
// (service/discovery.ts).
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { detectCgroupLayout, normalizeCgroupPath } from "../cgroup/layout.ts";
import { isDir } from "../cgroup/paths.ts";
import { DEFAULT_PERIOD_USEC, quotaFloorCpuMillis } from "../cgroup/values.ts";
import type { CpuMillis } from "../core/units.ts";
import { withQuotaFloor } from "../policy/rules.ts";
import type { Config } from "./config.ts";
import type { PartitionConfig } from "./config-partition.ts";
import { capacityCpuMillis, partitionSpecs } from "./config-runtime.ts";

/** What a template gives every cgroup it finds: a partition's fields but its name and cgroup. */
export type TemplatePartition = Omit<PartitionConfig, "name" | "cgroup">;

export interface DiscoverTemplate {
  /** A cgroup path below the root; a `*` in a segment matches one or more characters but `/`. */
  cgroup: string;
  /** The partition's name: `{N}` is what the Nth `*` matched, `{N:L}` its first L characters. */
  name: string;
  partition: TemplatePartition;
}

export interface DiscoverConfig {
  /** How often the hierarchy is scanned for the templates' cgroups, ms. */
  intervalMs: number;
  /** At most this many discovered partitions; the cgroups found past it are refused. */
  maxPartitions: number;
  partitions: DiscoverTemplate[];
}

/** A cgroup a template matched: the template's index, the cgroup's path, what each `*` matched. */
export interface FoundCgroup {
  template: number;
  cgroup: string;
  captures: string[];
}

/** `*` in a pattern segment: one or more characters, none of them `/` (a segment holds none). */
function segmentMatcher(segment: string): RegExp | null {
  if (!segment.includes("*")) return null;
  const body = segment
    .split("*")
    .map((s) => s.replace(/[\\^$.|?+()[\]{}]/g, "\\$&"))
    .join("(.+)");
  return new RegExp(`^${body}$`, "s");
}

/** How many `*` a pattern holds (the captures `{1}` … `{N}` its name may use). */
export const wildcardsOf = (pattern: string): number => pattern.split("*").length - 1;

/**
 * The directories under `root` (the cpu controller's hierarchy) that the templates' patterns
 * match, by template then path. A directory that cannot be read (gone meanwhile, not
 * permitted) matches nothing; a cgroup matched by two templates is found by each.
 */
export function scanTemplates(
  root: string,
  templates: ReadonlyArray<Pick<DiscoverTemplate, "cgroup">>,
  /** Filled with every directory the scan looked in (where a new match would appear). */
  visited?: Set<string>,
): FoundCgroup[] {
  const found: FoundCgroup[] = [];
  templates.forEach((t, template) => {
    const segments = normalizeCgroupPath(t.cgroup).split("/");
    const out: FoundCgroup[] = [];
    const walk = (dir: string, rel: string[], captures: string[], k: number): void => {
      if (k === segments.length) {
        out.push({ template, cgroup: rel.join("/"), captures });
        return;
      }
      visited?.add(dir);
      const segment = segments[k]!;
      const matcher = segmentMatcher(segment);
      if (matcher === null) {
        const next = path.join(dir, segment);
        if (isDir(next)) walk(next, [...rel, segment], captures, k + 1);
        return;
      }
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const m = matcher.exec(e.name);
        if (m === null) continue;
        walk(path.join(dir, e.name), [...rel, e.name], [...captures, ...m.slice(1)], k + 1);
      }
    };
    walk(root, [], [], 0);
    out.sort((a, b) => (a.cgroup < b.cgroup ? -1 : a.cgroup > b.cgroup ? 1 : 0));
    found.push(...out);
  });
  return found;
}

/** A partition name's rule (config-partition.ts `name`). */
const PARTITION_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const NAME_MAX = 63;

/** The default name template of a pattern: what its `*`s matched, joined by `-`. */
export const defaultNameTemplate = (pattern: string): string =>
  Array.from({ length: wildcardsOf(pattern) }, (_, k) => `{${k + 1}}`).join("-");

/** The placeholders a name template uses (`{N}`, `{N:L}`). */
export const NAME_PLACEHOLDER = /\{(\d+)(?::(\d+))?\}/g;

/**
 * A discovered partition's name: the template with each placeholder replaced by its capture
 * (`{N:L}`: its first L characters), every character a partition name may not hold made `_`
 * (`getty@tty1` → `getty_tty1`), and a name over 63 characters cut to 54 and given `-` and 8
 * hex digits of its SHA-256 (stable, and unlike its neighbours'). Null when what is left is
 * not a partition name (it must start with a letter or a digit).
 */
export function discoveredName(template: string, captures: readonly string[]): string | null {
  const raw = template.replace(NAME_PLACEHOLDER, (_, n: string, len: string | undefined) => {
    const c = captures[Number(n) - 1] ?? "";
    return len === undefined ? c : c.slice(0, Number(len));
  });
  let name = raw.replace(/[^a-zA-Z0-9_.-]/g, "_");
  if (name.length > NAME_MAX) {
    const hash = createHash("sha256").update(raw).digest("hex").slice(0, 8);
    name = `${name.slice(0, NAME_MAX - 9)}-${hash}`;
  }
  return PARTITION_NAME.test(name) ? name : null;
}

/** A discovered partition, and the template it came from. */
export interface Discovered {
  name: string;
  cgroup: string;
  template: number;
}

/** A cgroup a template matched that is not managed, and why. */
export interface Refused {
  cgroup: string;
  template: number;
  reason: string;
}

export interface Discovery {
  /** `cfg` with the discovered partitions after the configured ones. */
  config: Config;
  discovered: Discovered[];
  refused: Refused[];
}

/**
 * `cfg` with a partition for each cgroup found (`scanTemplates`), in the order found, after the
 * configured partitions. A found cgroup is refused, with the reason, when:
 * - its name is not a partition name, or another partition has it;
 * - it lies inside, or holds, another partition's cgroup (the configured ones and those
 *   discovered before it; one a configured partition names is skipped without a word: the
 *   configured partition is it);
 * - `discover.maxPartitions` are discovered already;
 * - its guarantee would not fit: the guarantees together, with the kernel's quota floor for
 *   a partition weir may cap at its entitlement, as `checkCapacity` counts them, must fit in
 *   `capacity` (the configured partitions' are checked at start: theirs never are refused).
 * The cgroups in `managed` (those discovered last time) are judged first, so a cgroup that
 * appears never pushes out a partition already managed (past `maxPartitions`, a name or a
 * guarantee taken): the newcomer is refused instead. The partitions are listed in the order
 * found either way. Pure: the same found cgroups and `managed` give the same config.
 */
export function withDiscovered(
  cfg: Config,
  found: readonly FoundCgroup[],
  capacity: CpuMillis,
  managed: ReadonlySet<string> = new Set(),
): Discovery {
  const d = cfg.discover;
  if (d === undefined) return { config: cfg, discovered: [], refused: [] };
  const names = new Map(cfg.partitions.map((p) => [p.name, p.name]));
  // every managed cgroup, and each of its ancestors (a found cgroup must be neither)
  const owner = new Map<string, string>();
  const holds = new Map<string, string>();
  const take = (cgroup: string, name: string): void => {
    owner.set(cgroup, name);
    const parts = cgroup.split("/");
    for (let k = 1; k < parts.length; k++) {
      const up = parts.slice(0, k).join("/");
      if (!holds.has(up)) holds.set(up, name);
    }
  };
  const configured = new Set<string>();
  for (const p of cfg.partitions) {
    const cgroup = normalizeCgroupPath(p.cgroup);
    configured.add(cgroup);
    take(cgroup, p.name);
  }
  const floor = quotaFloorCpuMillis(DEFAULT_PERIOD_USEC);
  const knobs = { suppressBatchAfterCycles: cfg.policy.suppressBatchAfterCycles };
  const guaranteed = (ps: readonly PartitionConfig[]): number =>
    partitionSpecs({ ...cfg, partitions: [...ps] }, capacity).reduce(
      (sum, spec) => sum + withQuotaFloor(spec, floor, knobs).minCpuMillis,
      0,
    );
  let committed = guaranteed(cfg.partitions);
  const added = new Map<FoundCgroup, { p: PartitionConfig; d: Discovered }>();
  const refused: Refused[] = [];
  const isManaged = (f: FoundCgroup) => managed.has(normalizeCgroupPath(f.cgroup));
  for (const f of [...found.filter(isManaged), ...found.filter((f) => !isManaged(f))]) {
    const t = d.partitions[f.template];
    if (t === undefined) continue;
    const cgroup = normalizeCgroupPath(f.cgroup);
    if (configured.has(cgroup)) continue;
    const refuse = (reason: string) => refused.push({ cgroup, template: f.template, reason });
    const name = discoveredName(t.name, f.captures);
    if (name === null) {
      refuse(
        `its name from "${t.name}" is not a partition name (1-63 letters, digits, '_', '.', '-', starting with a letter or digit)`,
      );
      continue;
    }
    const same = owner.get(cgroup);
    if (same !== undefined) {
      refuse(`it is partition ${same}'s cgroup already`);
      continue;
    }
    const outer = cgroup
      .split("/")
      .map((_, k, parts) => parts.slice(0, k).join("/"))
      .find((up) => up !== "" && owner.has(up));
    if (outer !== undefined) {
      refuse(`it lies inside partition ${owner.get(outer)}'s cgroup ${outer}`);
      continue;
    }
    const inner = holds.get(cgroup);
    if (inner !== undefined) {
      refuse(`it holds partition ${inner}'s cgroup`);
      continue;
    }
    if (names.has(name)) {
      refuse(`its name ${name} is another partition's`);
      continue;
    }
    if (added.size >= d.maxPartitions) {
      refuse(`discover.maxPartitions (${d.maxPartitions}) are discovered already`);
      continue;
    }
    const p: PartitionConfig = { ...t.partition, name, cgroup };
    const need = guaranteed([p]);
    if (committed + need > capacity) {
      refuse(
        `its guarantee (${need}m) does not fit: the partitions' guarantees take ${committed}m of the capacity's ${capacity}m`,
      );
      continue;
    }
    committed += need;
    names.set(name, name);
    take(cgroup, name);
    added.set(f, { p, d: { name, cgroup, template: f.template } });
  }
  // in the order found
  const taken = found.flatMap((f) => {
    const a = added.get(f);
    return a === undefined ? [] : [a];
  });
  return {
    config: { ...cfg, partitions: [...cfg.partitions, ...taken.map((a) => a.p)] },
    discovered: taken.map((a) => a.d),
    refused,
  };
}

/** What `scanTemplates` found, as one string: equal while the same cgroups match. */
export const foundKey = (found: readonly FoundCgroup[]): string =>
  found.map((f) => `${f.template}\t${f.cgroup}`).join("\n");

/**
 * Where the templates' patterns are looked for: the hierarchy of the cpu controller, whose
 * cgroups weir writes (v2: the cgroup2 mount; v1: the cpu hierarchy). Null when the host has
 * no cpu controller under `cgroupfs` (nothing is found; a configured partition says why).
 */
export function discoveryRoot(cgroupfs: string): string | null {
  try {
    const layout = detectCgroupLayout(cgroupfs);
    return layout.version === 2 ? layout.root : layout.cpu;
  } catch {
    return null;
  }
}

/**
 * What the templates find now (`managed`: the cgroups discovered last time, judged first), with
 * every cgroup matched and `foundKey` of them (for the watcher).
 */
export function discoverNow(
  cfg: Config,
  onlineCpus: number,
  managed: ReadonlySet<string> = new Set(),
): Discovery & { key: string; matched: Set<string> } {
  if (cfg.discover === undefined)
    return { config: cfg, discovered: [], refused: [], key: "", matched: new Set() };
  const root = discoveryRoot(cfg.roots.cgroupfs);
  const found = root === null ? [] : scanTemplates(root, cfg.discover.partitions);
  return {
    ...withDiscovered(cfg, found, capacityCpuMillis(cfg, onlineCpus), managed),
    key: foundKey(found),
    matched: new Set(found.map((f) => normalizeCgroupPath(f.cgroup))),
  };
}
