// `partitions[]`: one partition's section of the config (config.ts holds the whole), with its
// `packets:` counter sources checked against the registry of src/sensors/sources.ts: names,
// options, and what each source needs of the partition's other fields.
import { z } from "zod";
import { actuatorBackendNames, DEFAULT_ACTUATOR } from "../actuators/index.ts";
import { PARTITION_BOUND_RULES } from "../core/bounds.ts";
import { counterSourceNames } from "../sensors/sources.ts";
import { checked, cpuQuantity, withRule } from "./config-rules.ts";
import { feedOf, packetsEntries, parsePacketSources, sensorSpecBase } from "./config-sensors.ts";

const direction = z.enum(["rx", "tx"]);

/** A name Linux can give an interface (dev_valid_name): below IFNAMSIZ, no '/', ':' or space. */
const interfaceName = z
  .string()
  .regex(
    /^(?!\.{1,2}$)[^/:\s]{1,15}$/,
    "must be a Linux interface name: 1-15 characters, no '/', ':' or space, not '.' or '..' (rule: interface-name)",
  );

const interfaceSchema = z.union([
  interfaceName.describe("host-side interface (e.g. a veth): offered = tx, served = rx"),
  z
    .object({
      name: interfaceName,
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
  .union(
    [
      z.string(),
      z.array(z.string()).min(1, "must name at least one counter source (rule: packets-form)"),
      z.record(z.string(), z.union([z.record(z.string(), z.unknown()), z.null()])),
    ],
    {
      error: `must be a counter source's name, a list of names, or {name: options} whose options are a mapping or empty, e.g. {bpf: {pin: true}}; sources: ${counterSourceNames().join(", ")} (rule: packets-form)`,
    },
  )
  .describe(
    `counter sources to read and add up: a name, a list, or {name: options}; one of ${counterSourceNames().join(", ")} (default: interfaces and/or pid, as given; agent when source is agent)`,
  );

/** A partition's fields, each with its own rule (partitionSchema checks them together). */
export const partitionFields = z
  .object({
    name: z
      .string()
      .regex(
        /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/,
        "must be 1-63 letters, digits, '_', '.', '-', starting with a letter or digit (rule: partition-name)",
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
          .regex(
            /^(?:[0-9a-fA-F]{2}){16,64}$/,
            "must be an even number (32-128) of hex digits: 16-64 bytes (rule: hmac-key)",
          )
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
  .strict();

type PartitionFields = z.output<typeof partitionFields>;

/** What a partition's fields break together (paths relative to the partition). */
export function partitionIssues(
  p: PartitionFields,
): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  if (p.actuator === "qemu" && p.qemu === undefined)
    issues.push({
      path: ["qemu"],
      message: "is required with actuator: qemu: {qmp, console} (rule: qemu-target)",
    });
  if (p.actuator !== "qemu" && p.qemu !== undefined)
    issues.push({
      path: ["qemu"],
      message: `is only for actuator: qemu; current actuator is "${p.actuator}" (rule: qemu-target)`,
    });
  if (
    p.qemu?.minCpus !== undefined &&
    p.qemu.maxCpus !== undefined &&
    p.qemu.minCpus > p.qemu.maxCpus
  )
    issues.push({
      path: ["qemu", "minCpus"],
      message: `must be at most maxCpus (${p.qemu.maxCpus}): current value is ${p.qemu.minCpus} (rule: qemu-cpus)`,
    });
  if (p.packets !== undefined)
    for (const issue of parsePacketSources(p.packets, sensorSpecBase(p)).issues)
      issues.push({ path: issue.path, message: issue.message });
  return issues;
}

/** With packets:, where throughput comes from follows from the sources it names. */
function withFeeds<P extends Pick<PartitionFields, "packets" | "source">>(p: P): P {
  if (p.packets === undefined) return p;
  const feeds = new Set(packetsEntries(p.packets).map((e) => feedOf(e.name)));
  const source = feeds.has("agent") ? (feeds.has("host") ? "both" : "agent") : "host";
  return { ...p, source: source as P["source"] };
}

export const partitionSchema = partitionFields
  .superRefine((p, ctx) => {
    for (const issue of partitionIssues(p))
      ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  })
  .transform(withFeeds);

export type PartitionConfig = z.output<typeof partitionSchema>;
