// What follows from a validated config at run time: the managed CPUs and the capacity, the
// partitions' specs, the checks that need the online CPUs or the capacity, the config as the API
// shows it. No schema library here: `weir run` builds its manager from these and the config
// validated apart (load-config-apart.ts); config.ts validates and re-exports them.
import { DEFAULT_PERIOD_USEC, quotaFloorCpuMillis } from "../cgroup/values.ts";
import { checkPartitionBounds } from "../core/bounds.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import type { Importance, PartitionSpec } from "../core/model.ts";
import { type CpuMillis, cpuMillisFromCores } from "../core/units.ts";
import { withQuotaFloor } from "../policy/rules.ts";
import type { Config } from "./config.ts";
import { boundsOf, checkReserve, configFieldOf } from "./config-checks.ts";

/**
 * Managed CPUs in whole millicores, as every CPU amount of the config (cpuQuantity rounds min,
 * max and reserve): capacity.cpus, or the online CPUs for "auto".
 */
export function managedCpuMillis(
  cfg: { capacity: Pick<Config["capacity"], "cpus"> },
  onlineCpus: number,
): CpuMillis {
  return Math.round(
    cpuMillisFromCores(cfg.capacity.cpus === "auto" ? onlineCpus : cfg.capacity.cpus),
  );
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

/** A partition's fields in the parsed config that a runtime bounds change moves, by spec field. */
const CONFIG_FIELD_OF_BOUND = [
  ["minCpuMillis", "min"],
  ["maxCpuMillis", "max"],
  ["weight", "weight"],
  ["importance", "importance"],
] as const;

/**
 * The config as in force, for the API (`GET /api/config`): `redactConfig`, with each partition's
 * `min`, `max`, `weight` and `importance` that a runtime change (PATCH /api/partitions/:id) moved
 * from what the config gives replaced by the value in force — `min` and `max` in millicores, as
 * the parsed config holds them. A field no change moved stays as the config says (an absent
 * `max` stays absent). `configured`: the specs the config gives (`partitionSpecs`); `current`:
 * the manager's now.
 */
export function effectiveConfig(
  cfg: Config,
  configured: readonly PartitionSpec[],
  current: readonly PartitionSpec[],
): unknown {
  const out = redactConfig(cfg) as { partitions?: Array<Record<string, unknown>> };
  const now = new Map(current.map((s) => [s.id, s]));
  for (const [i, given] of configured.entries()) {
    const p = out.partitions?.[i];
    const spec = now.get(given.id);
    if (!p || !spec) continue;
    for (const [specField, configField] of CONFIG_FIELD_OF_BOUND)
      if (spec[specField] !== given[specField]) p[configField] = spec[specField];
  }
  return out;
}
