// What the sensors take from a partition's config section: its `packets:` counter sources
// parsed against the registry of src/sensors/sources.ts, and its interfaces and pid. Used by the
// schema (config-partition.ts) to check a config and by the wiring to build the sensors; no
// schema library here, so `weir run` builds its manager without loading one (the config is
// validated apart: load-config-apart.ts).
import { COUNTER_SOURCES, counterSourceNames } from "../sensors/sources.ts";
import type { OptionIssue, PacketSourceChoice, SensorSpec } from "../sensors/types.ts";

/** The `packets:` field as written: a name, a list of names, or names with their options. */
export type PacketsField = string | string[] | Record<string, Record<string, unknown> | null>;

/** The `packets:` field as (name, raw options, where in the config) entries. */
export function packetsEntries(
  packets: PacketsField,
): Array<{ name: string; raw: unknown; path: Array<string | number> }> {
  if (typeof packets === "string") return [{ name: packets, raw: null, path: [] }];
  if (Array.isArray(packets)) return packets.map((name, j) => ({ name, raw: null, path: [j] }));
  return Object.entries(packets).map(([name, raw]) => ({ name, raw, path: [name] }));
}

/** Where a chosen source's counts come from: weir reads them (host), or the agent reports them. */
export const feedOf = (name: string): "host" | "agent" =>
  COUNTER_SOURCES.find((s) => s.name === name)?.feed ?? "host";

/**
 * A partition's counter sources with parsed options, or the issues with them (paths relative
 * to the partition). Unknown names, options a source refuses, and what a source needs from
 * the partition's other fields (`pid`, `interfaces`) are issues.
 */
export function parsePacketSources(
  packets: PacketsField,
  spec: SensorSpec,
): { choices: PacketSourceChoice[]; issues: OptionIssue[] } {
  const choices: PacketSourceChoice[] = [];
  const issues: OptionIssue[] = [];
  for (const e of packetsEntries(packets)) {
    const at = ["packets", ...e.path];
    const source = COUNTER_SOURCES.find((s) => s.name === e.name);
    if (!source) {
      issues.push({
        path: at,
        message: `must be one of ${counterSourceNames().join(", ")} (rule: counter-source)`,
      });
      continue;
    }
    if (choices.some((c) => c.name === e.name)) {
      issues.push({
        path: at,
        message: "names a counter source twice (rule: unique-counter-source)",
      });
      continue;
    }
    let options: unknown;
    if (source.parseOptions) {
      const r = source.parseOptions(e.raw);
      if ("issues" in r) {
        for (const i of r.issues) issues.push({ path: [...at, ...i.path], message: i.message });
        continue;
      }
      options = r.options;
    } else if (e.raw !== null && e.raw !== undefined && Object.keys(e.raw).length > 0)
      issues.push({
        path: at,
        message: `the ${e.name} counter source takes no options (rule: no-options)`,
      });
    for (const i of source.checkSpec?.(spec) ?? []) issues.push(i);
    choices.push(options === undefined ? { name: e.name } : { name: e.name, options });
  }
  return { choices, issues };
}

/** What the sensors need of a partition's config (interfaces with their directions, pid). */
export function sensorSpecBase(p: {
  cgroup: string;
  interfaces: Array<string | { name: string; offered: "rx" | "tx"; served: "rx" | "tx" }>;
  pid?: number | undefined;
}): SensorSpec {
  const spec: SensorSpec = {
    cgroup: p.cgroup,
    interfaces: p.interfaces.map((i) =>
      typeof i === "string" ? { name: i, offered: "tx", served: "rx" } : i,
    ),
  };
  if (p.pid !== undefined) spec.pid = p.pid;
  return spec;
}
