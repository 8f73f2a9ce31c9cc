// `discover:` — partitions found in the cgroup tree: how often to look, how many at most, and
// the templates (a cgroup pattern, a name made from what its `*`s match, and the partition
// fields every cgroup found gets). A template's fields are checked by the partition's own
// schema (config-partition.ts); those that only one partition can have (its interfaces, pid,
// agent key and index, QEMU guest) are refused. discover.ts expands the templates at run time.
import { z } from "zod";
import { normalizeCgroupPath } from "../cgroup/layout.ts";
import { checkPartitionBounds, PARTITION_BOUND_RULES, ruleName } from "../core/bounds.ts";
import { boundsOf, configFieldOf } from "./config-checks.ts";
import { partitionFields, partitionIssues } from "./config-partition.ts";
import { withRule } from "./config-rules.ts";
import { packetsEntries } from "./config-sensors.ts";
import {
  type DiscoverConfig,
  type DiscoverTemplate,
  defaultNameTemplate,
  NAME_PLACEHOLDER,
  wildcardsOf,
} from "./discover.ts";

/** Fields of one partition only: a template that gives them would give every cgroup the same. */
const PER_PARTITION = {
  interfaces: "a partition's own host interfaces",
  pid: "a process of the partition's own",
  agent: "the partition's own agent key and index",
  qemu: "one QEMU guest",
  source: "where its throughput comes from, which follows from packets:",
} as const;

/** The counter source a template may give: it counts a cgroup's sockets, needing nothing else. */
const DISCOVERED_SOURCE = "bpf";

const PATTERN_RULE =
  "must hold a * in a segment, e.g. system.slice/docker-*.scope: a cgroup without one is one partition, for partitions: (rule: discover-pattern)";

const pattern = z
  .string()
  .min(1)
  .refine((p) => !p.split("/").includes(".."), "must not contain '..' (rule: cgroup-path)")
  .refine((p) => {
    try {
      const n = normalizeCgroupPath(p);
      return n !== "" && n.includes("*");
    } catch {
      return true; // '..': the rule above
    }
  }, PATTERN_RULE)
  .describe(
    "cgroup path below the cgroup root whose segments may hold * (one or more characters but /), e.g. system.slice/docker-*.scope",
  );

const nameTemplate = z
  .string()
  .min(1)
  .describe(
    "the partition's name: {N} is what the Nth * matched, {N:L} its first L characters (default: every match, joined by -); characters a name may not hold become _, and a name over 63 characters is cut to 54 and given - and 8 hex digits of its hash",
  );

/** A per-partition field in a template: refused, with why (and shown so in the JSON Schema). */
const perPartition = (what: string) =>
  z
    .never({
      error: `is ${what}: a template cannot give it to every cgroup it finds (rule: discover-per-partition)`,
    })
    .optional()
    .describe(`not in a template: ${what}`);

const templateSchema = partitionFields
  .omit({ name: true, cgroup: true })
  .extend({
    cgroup: pattern,
    name: nameTemplate.optional(),
    interfaces: perPartition(PER_PARTITION.interfaces),
    pid: perPartition(PER_PARTITION.pid),
    agent: perPartition(PER_PARTITION.agent),
    qemu: perPartition(PER_PARTITION.qemu),
    source: perPartition(PER_PARTITION.source),
  })
  .strict()
  .transform((t, ctx): DiscoverTemplate => {
    const { cgroup, name, ...fields } = t;
    let bad = false;
    const issue = (path: Array<string | number>, message: string) => {
      ctx.addIssue({ code: "custom", path, message });
      bad = true;
    };
    const stars = wildcardsOf(cgroup);
    const template = name ?? defaultNameTemplate(cgroup);
    if (name !== undefined) {
      for (const m of name.matchAll(NAME_PLACEHOLDER)) {
        const n = Number(m[1]);
        if (n < 1 || n > stars)
          issue(
            ["name"],
            `uses {${m[1]}} but the cgroup pattern has ${stars} * (rule: discover-name: {1} … {${stars}})`,
          );
        if (m[2] !== undefined && !(Number(m[2]) >= 1))
          issue(["name"], `cuts {${m[1]}:${m[2]}} to no character (rule: discover-name)`);
      }
      const literal = name.replace(NAME_PLACEHOLDER, "x");
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(literal))
        issue(
          ["name"],
          "must be letters, digits, '_', '.', '-' and {N} placeholders, starting with a letter, a digit or a placeholder (rule: discover-name)",
        );
    }
    // counted by its cgroup: bpf is the one counter source that needs nothing of its own
    const others =
      fields.packets === undefined
        ? []
        : packetsEntries(fields.packets).filter((e) => e.name !== DISCOVERED_SOURCE);
    for (const e of others)
      issue(
        ["packets", ...e.path],
        `must be ${DISCOVERED_SOURCE}: a discovered partition is counted by its cgroup, and ${e.name} needs ${e.name === "agent" ? "an agent key" : e.name === "pid" ? "a pid" : "interfaces"} of the partition's own (rule: discover-traffic-source)`,
      );
    if (fields.kind === "network" && fields.packets === undefined)
      issue(
        ["packets"],
        `a discovered network partition is counted by its cgroup: give packets: ${DISCOVERED_SOURCE} (rule: discover-traffic-source)`,
      );
    if (fields.actuator === "qemu")
      issue(
        ["actuator"],
        `is one QEMU guest's backend: a template cannot give it to every cgroup it finds (rule: discover-per-partition)`,
      );
    // the partition's own checks across its fields (the counter source's options), and min <=
    // max as a partition's (each field's own rule was checked by its schema); a bpf partition's
    // throughput comes from the host
    const { interfaces: _i, pid: _p, agent: _a, qemu: _q, source: _s, ...rest } = fields;
    const partition = { ...rest, interfaces: [], source: "host" as const };
    if (others.length === 0 && fields.actuator !== "qemu")
      for (const iss of partitionIssues({ ...partition, name: "discovered", cgroup: "discovered" }))
        issue(iss.path, iss.message);
    for (const b of checkPartitionBounds([boundsOf(partition)], {
      capacityCpuMillis: null,
      label: configFieldOf,
    }))
      if (b.rule !== ruleName(PARTITION_BOUND_RULES[b.field]))
        issue([configFieldOf(b.field)], withRule(b));
    if (!bad) return { cgroup, name: template, partition };
    return z.NEVER;
  });

export const discoverSchema = z
  .object({
    intervalMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(1000)
      .describe("how often the cgroup tree is looked at for the templates' cgroups, ms"),
    maxPartitions: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe("discovered partitions at most; cgroups found past it are logged and not managed"),
    partitions: z
      .array(templateSchema)
      .min(1, "must give at least one template (rule: min-1)")
      .describe("templates: a cgroup pattern, a name, and the fields every cgroup found gets"),
  })
  .strict()
  .optional()
  .describe(
    "partitions found in the cgroup tree: each directory a template's pattern matches is managed as a partition while it is there",
  ) as unknown as z.ZodOptional<z.ZodType<DiscoverConfig, unknown>>;
