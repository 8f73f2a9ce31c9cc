// weir's configuration: one zod definition gives validation, defaults, types and the JSON Schema.
// Errors name the field, the rule and the bad value (see formatConfigIssues). Policy knobs come
// from their declaration (src/policy/knobs.ts), bounds are checked by src/core/bounds.ts.
import { z } from "zod";
import { actuatorBackendNames, DEFAULT_ACTUATOR } from "../actuators/index.ts";
import { normalizeCgroupPath } from "../cgroup/layout.ts";
import { DEFAULT_PERIOD_USEC, quotaFloorCpuMillis } from "../cgroup/values.ts";
import {
  type BoundField,
  type BoundsCandidate,
  type BoundsIssue,
  checkPartitionBounds,
  checkRule,
  isChoiceRule,
  type NumberRule,
  PARTITION_BOUND_RULES,
  type Rule,
  ruleMessage,
  ruleName,
} from "../core/bounds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Importance, PartitionSpec } from "../core/model.ts";
import { type CpuMillis, cpuMillisFromCores } from "../core/units.ts";
import {
  defaultKnobSettings,
  KNOB_KEYS,
  type KnobDeclaration,
  type KnobSettings,
  POLICY_KNOBS,
} from "../policy/knobs.ts";
import { withQuotaFloor } from "../policy/rules.ts";
import { COUNTER_SOURCES, counterSourceNames } from "../sensors/sources.ts";
import type { OptionIssue, PacketSourceChoice, SensorSpec } from "../sensors/types.ts";
import { DEFAULT_HISTORY_MAX_BYTES } from "./history.ts";
import { DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES } from "./manager-options.ts";

/** A CPU amount: a number of CPUs (0.5) or a Kubernetes-style millicore string ("500m"). */
const cpuQuantity = z
  .union([z.number(), z.string()])
  .describe('CPU amount: CPUs as a number (0.5) or millicores as a string ("500m")')
  .transform((v, ctx): CpuMillis => {
    const millis =
      typeof v === "number"
        ? cpuMillisFromCores(v)
        : /^\d+(\.\d+)?m$/.test(v.trim())
          ? Number(v.trim().slice(0, -1))
          : /^\d+(\.\d+)?$/.test(v.trim())
            ? cpuMillisFromCores(Number(v.trim()))
            : Number.NaN;
    if (!Number.isFinite(millis) || millis < 0) {
      ctx.addIssue({
        code: "custom",
        message: 'must be a non-negative CPU amount like 0.5 or "500m" (rule: cpu-quantity)',
      });
      return z.NEVER;
    }
    return Math.round(millis);
  });

/** "must be … (rule: name)": the message zod carries, split again by formatConfigIssues. */
const withRule = (issue: { message: string; rule: string }): string =>
  `${issue.message} (rule: ${issue.rule})`;

/** JSON Schema keywords for a number rule, so editors show the same bounds. */
function jsonSchemaBounds(rule: NumberRule): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (rule.integer) out.type = "integer";
  if (rule.min !== undefined) out.minimum = rule.min;
  if (rule.above !== undefined) out.exclusiveMinimum = rule.above;
  if (rule.max !== undefined) out.maximum = rule.max;
  return out;
}

/** The rule's message for a value of the wrong type ("abc" where a number from 0 to 5 goes). */
const typeError = (rule: Rule) => () =>
  withRule({ message: ruleMessage(rule), rule: ruleName(rule) });

/**
 * A value that keeps `rule`: a number checked by checkRule (core/bounds.ts), the check the API
 * and the manager run too, its range also in the JSON Schema; a choice by zod's enum, with the
 * same message.
 */
function checked(rule: NumberRule): z.ZodType<number>;
function checked(rule: Rule): z.ZodType<number | string>;
function checked(rule: Rule): z.ZodType<number | string> {
  if (isChoiceRule(rule))
    return z.enum(rule.oneOf as [string, ...string[]], { error: typeError(rule) });
  return z
    .number({ error: typeError(rule) })
    .superRefine((v, ctx) => {
      const issue = checkRule("", rule, v);
      if (issue) ctx.addIssue({ code: "custom", message: withRule(issue) });
    })
    .meta(jsonSchemaBounds(rule));
}

/** `policy:` — one entry per knob in POLICY_KNOBS (src/policy/knobs.ts), nothing else. */
const policyShape: Record<string, z.ZodType> = {};
for (const key of KNOB_KEYS) {
  const knob: KnobDeclaration = POLICY_KNOBS[key];
  policyShape[key] = checked(knob.rule)
    .default(knob.default)
    .describe(knob.unit === "choice" ? knob.description : `${knob.description} [${knob.unit}]`);
}
const policySchema = z
  .object(policyShape)
  .strict()
  .default(() => defaultKnobSettings()) as unknown as z.ZodDefault<
  z.ZodType<KnobSettings, Partial<KnobSettings>>
>;

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

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'must look like "127.0.0.1:9470" (rule: host:port)');

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
          .describe("unplug only after directives asked for fewer vCPUs this long (default 10000)"),
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

export const configSchema = z
  .object({
    intervalMs: z.number().int().min(50).max(10_000).default(100).describe("cycle interval"),
    capacity: z
      .object({
        cpus: z
          .union([z.literal("auto"), z.number().positive()])
          .default("auto")
          .describe("managed CPUs, or auto (all online CPUs)"),
        reserve: cpuQuantity.default(0).describe("kept back for the host, never allocated"),
      })
      .strict()
      .default({ cpus: "auto", reserve: 0 }),
    roots: z
      .object({
        cgroupfs: z.string().default("/sys/fs/cgroup"),
        sysfs: z.string().default("/sys"),
        procfs: z.string().default("/proc"),
      })
      .strict()
      .default({ cgroupfs: "/sys/fs/cgroup", sysfs: "/sys", procfs: "/proc" }),
    policy: policySchema,
    onShutdown: z
      .enum(["restore", "keep"])
      .default("restore")
      .describe("restore the values weir found, or keep the last ones written"),
    stateFile: z.string().optional().describe("where weir keeps state to resume after a restart"),
    staleAfterMs: z.number().int().min(100).default(3000).describe("agent silence before decay"),
    historyMaxBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 40)
      .default(DEFAULT_HISTORY_MAX_BYTES)
      .describe(
        "bytes of cycle records kept for the API and dashboard (estimated; at most 600 records, at least the latest)",
      ),
    retryGoneMs: z
      .number()
      .int()
      .min(100)
      .default(5000)
      .describe("retry a vanished cgroup, or a partition's exited pid, after"),
    maxConsecutiveCycleFailures: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES)
      .describe(
        "cycles in a row that may fail (keeping the last values written) before weir stops, restoring as on SIGTERM",
      ),
    api: z
      .object({
        listen: hostPort.default("127.0.0.1:9470"),
        token: z.string().min(16, "must be at least 16 characters (rule: token-length)").optional(),
        enabled: z.boolean().default(true),
        maxEventClients: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(32)
          .describe("open /api/events streams at most; one more is answered 503"),
        maxConnections: z
          .number()
          .int()
          .min(2)
          .max(100_000)
          .default(128)
          .describe("open HTTP connections at most (event streams included)"),
      })
      .strict()
      .optional(),
    transport: z
      .object({
        udp: z.object({ listen: hostPort }).strict().optional(),
        shm: z
          .object({
            path: z.string().min(1),
            slots: z.number().int().min(1).max(65_536).default(64),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
      })
      .strict()
      .default({ level: "info" }),
    partitions: z.array(partitionSchema).min(1, "must list at least one partition (rule: min-1)"),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.partitions.forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({
          code: "custom",
          path: ["partitions", i, "name"],
          message: "must be unique (rule: unique-name)",
        });
      names.add(p.name);
      if (
        p.kind === "network" &&
        p.packets === undefined &&
        p.source !== "agent" &&
        p.interfaces.length === 0 &&
        !p.pid
      )
        ctx.addIssue({
          code: "custom",
          path: ["partitions", i, "interfaces"],
          message:
            "a network partition read from the host needs interfaces, a pid, or a packets: source (rule: traffic-source)",
        });
      if (p.source !== "host" && !p.agent)
        ctx.addIssue({
          code: "custom",
          path: ["partitions", i, "agent"],
          message: `is required when source is "${p.source}" (rule: agent-key)`,
        });
    });
    // one directory per partition, none inside another
    for (const issue of checkCgroupPaths(cfg.partitions.map((p) => p.cgroup)))
      ctx.addIssue({
        code: "custom",
        path: ["partitions", issue.index, "cgroup"],
        message: withRule(issue),
      });
    // a reserve that leaves no capacity (capacity.cpus "auto" is checked at run time)
    if (typeof cfg.capacity.cpus === "number") {
      const issue = checkReserve(cpuMillisFromCores(cfg.capacity.cpus), cfg.capacity.reserve);
      if (issue)
        ctx.addIssue({ code: "custom", path: ["capacity", "reserve"], message: withRule(issue) });
    }
    // min <= max (the capacity is not known yet); each field's own rule was checked above
    for (const issue of checkPartitionBounds(cfg.partitions.map(boundsOf), {
      capacityCpuMillis: null,
      label: configFieldOf,
    })) {
      if (issue.rule === ruleName(PARTITION_BOUND_RULES[issue.field])) continue;
      ctx.addIssue({
        code: "custom",
        path: ["partitions", issue.index ?? 0, configFieldOf(issue.field)],
        message: withRule(issue),
      });
    }
    if (cfg.partitions.some((p) => p.source !== "host") && !cfg.transport)
      ctx.addIssue({
        code: "custom",
        path: ["transport"],
        message: "is required when a partition's source is agent or both (rule: agent-transport)",
      });
  });

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
export function checkCgroupPaths(paths: readonly string[]): CgroupPathIssue[] {
  const issues: CgroupPathIssue[] = [];
  const seen: Array<{ index: number; path: string }> = [];
  paths.forEach((raw, index) => {
    let path: string;
    try {
      path = normalizeCgroupPath(raw);
    } catch {
      return; // ".." is the field's own rule (cgroup-path), reported where it is parsed
    }
    const issue = (rule: string, message: string) =>
      issues.push({ field: "cgroup", rule, message, value: raw, index });
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
function boundsOf(p: {
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
function configFieldOf(field: BoundField): string {
  return field === "minCpuMillis" ? "min" : field === "maxCpuMillis" ? "max" : field;
}

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type PartitionConfig = z.output<typeof partitionSchema>;

/** Read the value at a zod issue path from the raw input, for the error message. */
function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = raw;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = "";
  for (const k of path) s += typeof k === "number" ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s || "(top level)";
}

function describeValue(v: unknown): string {
  if (v === undefined) return "missing";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One line per problem: `partitions[1].min: must be ... (rule: ...): got "abc"`. */
export function formatConfigIssues(raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((iss) => {
    const path = iss.path as PropertyKey[];
    let message = iss.message;
    if (iss.code === "unrecognized_keys") {
      return `${formatPath(path)}: unknown field(s) ${iss.keys.map((k) => `"${k}"`).join(", ")} (rule: known-fields)`;
    }
    if (!message.includes("(rule:")) message = `${message} (rule: ${iss.code})`;
    return `${formatPath(path)}: ${message}: got ${describeValue(valueAt(raw, path))}`;
  });
}

export function parseConfig(raw: unknown, source = "config"): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = formatConfigIssues(raw, result.error.issues);
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `${source} is invalid:\n  ${lines.join("\n  ")}`,
    );
  }
  return result.data;
}

/** Managed CPUs in millicores: capacity.cpus, or the online CPUs for "auto". */
export function managedCpuMillis(cfg: Config, onlineCpus: number): CpuMillis {
  return cpuMillisFromCores(cfg.capacity.cpus === "auto" ? onlineCpus : cfg.capacity.cpus);
}

/** Capacity in millicores: managed CPUs minus the reserve. */
export function capacityCpuMillis(cfg: Config, onlineCpus: number): CpuMillis {
  return Math.max(0, managedCpuMillis(cfg, onlineCpus) - cfg.capacity.reserve);
}

export function partitionSpecs(cfg: Config, capacity: CpuMillis): PartitionSpec[] {
  return cfg.partitions.map((p) => {
    const spec: PartitionSpec = {
      id: p.name,
      minCpuMillis: p.min,
      maxCpuMillis: Math.min(p.max ?? capacity, capacity),
      weight: p.weight,
      importance: p.importance as Importance,
      kind: p.kind,
    };
    if (p.capped) spec.capped = true;
    if (p.goal) spec.goalPacketsPerSec = p.goal.packetsPerSec;
    return spec;
  });
}

/**
 * Checks that need the online CPUs (known only at run time): a reserve below the managed CPUs
 * (capacity.cpus "auto"; a number is checked by parseConfig).
 */
export function checkManagedCpus(cfg: Config, onlineCpus: number): void {
  const managed = managedCpuMillis(cfg, onlineCpus);
  const issue = checkReserve(managed, cfg.capacity.reserve);
  if (issue)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `${issue.field}: ${issue.message} (rule: ${issue.rule}): got ${issue.value}m (capacity.cpus is ${JSON.stringify(cfg.capacity.cpus)}${cfg.capacity.cpus === "auto" ? `: ${onlineCpus} online CPUs` : ""})`,
    );
}

/**
 * Checks that need the capacity (known only at run time): guarantees must fit, counting the
 * kernel's quota floor for the partitions weir may cap at their entitlement (withQuotaFloor).
 */
export function checkCapacity(cfg: Config, capacity: CpuMillis): void {
  // max is left out: a max above the capacity means "the capacity" (partitionSpecs clamps it)
  const issues = checkPartitionBounds(
    cfg.partitions.map((p) => ({ bounds: { ...boundsOf(p).bounds, maxCpuMillis: undefined } })),
    { capacityCpuMillis: capacity, label: configFieldOf },
  );
  if (issues.length > 0)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      issues
        .map(
          (issue) =>
            `${issue.index === undefined ? "partitions[*]" : `partitions[${issue.index}]`}.${configFieldOf(issue.field)}: ${issue.message} (rule: ${issue.rule}): got ${issue.value}m (the capacity is capacity.cpus minus capacity.reserve)`,
        )
        .join("\n  "),
    );
  // the caps the kernel enforces must fit too: a partition the policy may cap at its
  // entitlement is guaranteed at least the quota floor (10m at a fresh cgroup's 100 ms period)
  const floor = quotaFloorCpuMillis(DEFAULT_PERIOD_USEC);
  const knobs = { suppressBatchAfterCycles: cfg.policy.suppressBatchAfterCycles };
  const withFloors = partitionSpecs(cfg, capacity).reduce(
    (sum, spec) => sum + withQuotaFloor(spec, floor, knobs).minCpuMillis,
    0,
  );
  if (withFloors > capacity)
    throw new WeirError(
      ErrorCodes.CONFIG_INVALID,
      `partitions[*].min: guarantees together, each partition weir may cap at its entitlement (capped, or batch while policy.suppressBatchAfterCycles > 0) counted at least the kernel's ${floor}m quota floor, must fit in the capacity (${capacity}m) (rule: sum-min-with-quota-floor-le-capacity): got ${withFloors}m`,
    );
}

/** The config as JSON with secrets replaced, for the API and logs. */
export function redactConfig(cfg: Config): unknown {
  return JSON.parse(
    JSON.stringify(cfg, (k, v) =>
      (k === "key" || k === "token") && typeof v === "string" ? "<redacted>" : v,
    ),
  );
}

/** JSON Schema for editors, generated from the same definition. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" });
}
