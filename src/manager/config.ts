// weir's configuration: one zod definition gives validation, defaults, types and the JSON Schema.
// Errors name the field, the rule and the bad value (config-rules.ts). Policy knobs come from
// their declaration (src/policy/knobs.ts), bounds are checked by src/core/bounds.ts. A
// partition's section is config-partition.ts, the checks across fields config-checks.ts; here
// are the whole, parsing, and what follows from it at run time (capacity, specs, guarantees).
import { z } from "zod";
import { checkPartitionBounds, PARTITION_BOUND_RULES, ruleName } from "../core/bounds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  defaultKnobSettings,
  KNOB_KEYS,
  type KnobDeclaration,
  type KnobSettings,
  POLICY_KNOBS,
} from "../policy/knobs.ts";
import { DIRECTIVE_REFRESH_MS } from "../transport/datagram.ts";
import { boundsOf, checkCgroupPaths, checkReserve, configFieldOf } from "./config-checks.ts";
import { discoverSchema } from "./config-discover.ts";
import { partitionSchema } from "./config-partition.ts";
import { checked, cpuQuantity, formatConfigIssues, withRule } from "./config-rules.ts";
import { managedCpuMillis } from "./config-runtime.ts";
import { DEFAULT_HISTORY_MAX_BYTES } from "./history.ts";
import { DEFAULT_MAX_CONSECUTIVE_CYCLE_FAILURES } from "./manager-options.ts";

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

const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'must look like "127.0.0.1:9470" (rule: host:port)')
  .refine(
    (v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65_535,
    "must have a port from 0 to 65535 (rule: port-range)",
  );

/**
 * The least capacity.cpus: one millicore. Every CPU amount is whole millicores (cpuQuantity
 * rounds min, max and reserve; managedCpuMillis rounds capacity.cpus), and below 0.001 CPU a
 * number would round to a capacity of 0m.
 */
const MIN_CAPACITY_CPUS = 0.001;
const CAPACITY_CPUS_RULE = `must be "auto" or a number of CPUs of at least ${MIN_CAPACITY_CPUS} (one millicore) (rule: capacity-cpus)`;

export const configSchema = z
  .object({
    intervalMs: z.number().int().min(50).max(10_000).default(100).describe("cycle interval"),
    capacity: z
      .object({
        cpus: z
          .union([z.literal("auto"), z.number().min(MIN_CAPACITY_CPUS, CAPACITY_CPUS_RULE)], {
            error: CAPACITY_CPUS_RULE,
          })
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
        udp: z
          .object({
            listen: hostPort,
            directiveRefreshMs: z
              .number()
              .int()
              .min(0)
              .max(3_600_000)
              .default(DIRECTIVE_REFRESH_MS)
              .describe(
                "an unchanged directive is sent to its agent again after this long (0: every cycle); a changed one, or one to a new address, at once",
              ),
          })
          .strict()
          .optional(),
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
    placement: z
      .object({
        mode: z
          .enum(["off", "spread", "auto"])
          .default("auto")
          .describe(
            "spread: each network partition runs on CPUs of its own (cpuset.cpus), packed by its need; off: every CPU; auto: spread where it protects (network and batch partitions on CPUs that share no last-level cache), else off",
          ),
        fill: z
          .number()
          .gt(0, "must be above 0 (rule: fill-range, 0 < fill <= 0.95)")
          .max(
            0.95,
            "must be at most 0.95 (rule: fill-range, 0 < fill <= 0.95: a partition placed on k CPUs uses at most k × 1,000m, so its need must be able to pass k × 1,000m × fill for it to be given more)",
          )
          .default(0.8)
          .describe("the share of a CPU placement fills at most with network partitions' needs"),
      })
      .strict()
      .default({ mode: "auto", fill: 0.8 })
      .describe("placing network partitions on CPUs (absent: auto, fill 0.8)"),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
      })
      .strict()
      .default({ level: "info" }),
    partitions: z
      .array(partitionSchema)
      .default([])
      .describe("the partitions (at least one, unless discover: finds them)"),
    discover: discoverSchema,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.partitions.length === 0 && cfg.discover === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["partitions"],
        message: "must list at least one partition, or discover: must find them (rule: min-1)",
      });
    // a pattern is below the root, as a partition's cgroup is (not /sys/fs/cgroup/...)
    cfg.discover?.partitions.forEach((t, i) => {
      if (typeof t?.cgroup !== "string") return; // failed its own checks: reported
      for (const issue of checkCgroupPaths([t.cgroup], cfg.roots.cgroupfs))
        if (issue.rule === "cgroup-relative")
          ctx.addIssue({
            code: "custom",
            path: ["discover", "partitions", i, "cgroup"],
            message: withRule(issue),
          });
    });
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
    for (const issue of checkCgroupPaths(
      cfg.partitions.map((p) => p.cgroup),
      cfg.roots.cgroupfs,
    ))
      ctx.addIssue({
        code: "custom",
        path: ["partitions", issue.index, "cgroup"],
        message: withRule(issue),
      });
    // a reserve that leaves no capacity (capacity.cpus "auto" is checked at run time)
    if (typeof cfg.capacity.cpus === "number" && cfg.capacity.cpus >= MIN_CAPACITY_CPUS) {
      const issue = checkReserve(managedCpuMillis(cfg, 0), cfg.capacity.reserve);
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
    // one wire index (and shared-memory slot) per agent partition: agent.index, else its place
    // in the list (agents.ts agentIndexOf); below transport.shm.slots when shm carries them
    const indexes = new Map<number, number>();
    cfg.partitions.forEach((p, i) => {
      if (!p.agent) return;
      const index = p.agent.index ?? i;
      const how =
        p.agent.index === undefined ? ` (its place in the list: agent.index not given)` : "";
      const other = indexes.get(index);
      if (other !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["partitions", i, "agent", "index"],
          message: `must be unique: partitions[${other}] (${cfg.partitions[other]!.name}) has agent index ${index} too${how} (rule: unique-agent-index)`,
        });
      else indexes.set(index, i);
      const slots = cfg.transport?.shm?.slots;
      if (slots !== undefined && index >= slots)
        ctx.addIssue({
          code: "custom",
          path: ["partitions", i, "agent", "index"],
          message: `must be below transport.shm.slots (${slots}): agent index is ${index}${how} (rule: index-lt-slots)`,
        });
    });
    if (cfg.partitions.some((p) => p.source !== "host") && !cfg.transport)
      ctx.addIssue({
        code: "custom",
        path: ["transport"],
        message: "is required when a partition's source is agent or both (rule: agent-transport)",
      });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;

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

/** JSON Schema for editors, generated from the same definition. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" });
}
