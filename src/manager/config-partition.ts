// `partitions[]`: one partition's section of the config (config.ts holds the whole), with its
// `packets:` counter sources checked against the registry of src/sensors/sources.ts: names,
// options, and what each source needs of the partition's other fields.
import { z } from "zod";
import { actuatorBackendNames, DEFAULT_ACTUATOR } from "../actuators/index.ts";
import { PARTITION_BOUND_RULES } from "../core/bounds.ts";
import { COUNTER_SOURCES, counterSourceNames } from "../sensors/sources.ts";
import type { OptionIssue, PacketSourceChoice, SensorSpec } from "../sensors/types.ts";
import { checked, cpuQuantity, withRule } from "./config-rules.ts";

const direction = z.enum(["rx", "tx"]);

const interfaceSchema = z.union([
  z.string().min(1).describe("host-side interface (e.g. a veth): offered = tx, served = rx"),
  z
    .object({
      name: z.string().min(1).max(15),
      offered: direction.default("tx").describe("direction that carries arriving requests"),
      served: direction.default("rx").describe("direction that carries replies"),
    })
    .strict(),
]);

/**
 * `packets:` — the counter sources to read (src/sensors/sources.ts): one name (`bpf`), a list
 * (`[interfaces, pid]`), or names with their options (`{bpf: {offered: ingress}}`).
 */
const packetsSchema = z
  .union([
    z.string(),
    z.array(z.string()).min(1),
    z.record(z.string(), z.union([z.record(z.string(), z.unknown()), z.null()])),
  ])
  .describe(
    `counter sources to read and add up: a name, a list, or {name: options}; one of ${counterSourceNames().join(", ")} (default: interfaces and/or pid, as given; agent when source is agent)`,
  );
type PacketsField = z.infer<typeof packetsSchema>;

/** The `packets:` field as (name, raw options, where in the config) entries. */
function packetsEntries(
  packets: PacketsField,
): Array<{ name: string; raw: unknown; path: Array<string | number> }> {
  if (typeof packets === "string") return [{ name: packets, raw: null, path: [] }];
  if (Array.isArray(packets)) return packets.map((name, j) => ({ name, raw: null, path: [j] }));
  return Object.entries(packets).map(([name, raw]) => ({ name, raw, path: [name] }));
}

/** Where a chosen source's counts come from: weir reads them (host), or the agent reports them. */
const feedOf = (name: string): "host" | "agent" =>
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

export const partitionSchema = z
  .object({
    name: z
      .string()
      .regex(
        /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/,
        "must be 1-63 letters, digits, '_', '.', '-' (rule: partition-name)",
      ),
    kind: z
      .enum(["network", "batch"])
      .default("network")
      .describe("network partitions are driven by traffic; batch ones get what is left"),
    cgroup: z
      .string()
      .min(1)
      .refine((p) => !p.split("/").includes(".."), "must not contain '..' (rule: cgroup-path)")
      .describe("cgroup path relative to the cgroup root, e.g. weir/web"),
    actuator: z
      .enum(actuatorBackendNames() as [string, ...string[]], {
        error: withRule({
          message: `must be a registered actuator backend: ${actuatorBackendNames().join(", ")}`,
          rule: "actuator-backend",
        }),
      })
      .default(DEFAULT_ACTUATOR)
      .describe("the actuator backend that writes this partition's allocation"),
    qemu: z
      .object({
        qmp: z.string().min(1).describe("QEMU's QMP unix socket"),
        console: z
          .string()
          .min(1)
          .describe("the file QEMU writes the guest's serial console to (from boot)"),
        minCpus: z.number().int().min(1).max(1024).optional().describe("fewest vCPUs (default 1)"),
        maxCpus: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .optional()
          .describe("most vCPUs (default: every slot QEMU offers)"),
        shrinkAfterMs: z
          .number()
          .int()
          .min(0)
          .max(3_600_000)
          .optional()
          .describe(
            "shrink only after directives asked for fewer vCPUs this long (default 10000; the guest offlines them, nothing is unplugged)",
          ),
      })
      .strict()
      .optional()
      .describe(
        "with actuator: qemu — the guest's QMP socket and console; cgroup is the cgroup QEMU runs in",
      ),
    interfaces: z.array(interfaceSchema).default([]),
    pid: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("a pid in the partition's network namespace (its /proc/<pid>/net view)"),
    min: cpuQuantity.default(0).describe("guarantee: never less than this"),
    max: cpuQuantity.optional().describe("limit: never more than this (default: capacity)"),
    weight: checked(PARTITION_BOUND_RULES.weight)
      .default(100)
      .describe("share within an importance level and of the left-over"),
    capped: z
      .boolean()
      .default(false)
      .describe(
        "never use more than the entitlement, even when CPU is idle (PR/SM capped mode); default: may use any idle CPU",
      ),
    importance: checked(PARTITION_BOUND_RULES.importance)
      .default(3)
      .describe("1 is the most important"),
    goal: z
      .object({ packetsPerSec: z.number().positive() })
      .strict()
      .optional()
      .describe("packets per second the partition must sustain"),
    packets: packetsSchema.optional(),
    source: z
      .enum(["host", "agent", "both"])
      .default("host")
      .describe(
        "where throughput comes from: host counters, the partition's agent, or both (with packets: what its sources say)",
      ),
    agent: z
      .object({
        key: z
          .string()
          .regex(/^[0-9a-fA-F]{32,128}$/, "must be 32-128 hex digits (rule: hmac-key)")
          .describe("per-partition HMAC key, hex"),
        index: z
          .number()
          .int()
          .min(0)
          .max(65_535)
          .optional()
          .describe("partition index on the wire and slot number (default: place in the list)"),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.actuator === "qemu" && p.qemu === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["qemu"],
        message: "is required with actuator: qemu: {qmp, console} (rule: qemu-target)",
      });
    if (p.actuator !== "qemu" && p.qemu !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["qemu"],
        message: `is only for actuator: qemu; current actuator is "${p.actuator}" (rule: qemu-target)`,
      });
    if (
      p.qemu?.minCpus !== undefined &&
      p.qemu.maxCpus !== undefined &&
      p.qemu.minCpus > p.qemu.maxCpus
    )
      ctx.addIssue({
        code: "custom",
        path: ["qemu", "minCpus"],
        message: `must be at most maxCpus (${p.qemu.maxCpus}): current value is ${p.qemu.minCpus} (rule: qemu-cpus)`,
      });
    if (p.packets === undefined) return;
    for (const issue of parsePacketSources(p.packets, sensorSpecBase(p)).issues)
      ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  })
  .transform((p) => {
    if (p.packets === undefined) return p;
    // with packets:, where throughput comes from follows from the sources it names
    const feeds = new Set(packetsEntries(p.packets).map((e) => feedOf(e.name)));
    const source = feeds.has("agent") ? (feeds.has("host") ? "both" : "agent") : "host";
    return { ...p, source: source as typeof p.source };
  });

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

export type PartitionConfig = z.output<typeof partitionSchema>;
