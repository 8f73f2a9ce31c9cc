// Bounds and the one function that checks them. A rule is declared once, as data (a range or a
// list of choices); the config schema, the HTTP API and the manager all check values with
// checkRule / checkPartitionBounds, so a bad value gets the same field, rule and message from
// a YAML file, a PATCH request or a runtime call. Pure: no node:*, no other src/ folder.
import { ErrorCodes, WeirError } from "./errors.ts";

/** A number in a range: `min`/`max` inclusive, `above` exclusive, optionally whole. */
export interface NumberRule {
  readonly min?: number;
  readonly above?: number;
  readonly max?: number;
  readonly integer?: boolean;
  /** The rule's name in errors; default "integer-range" or "range". */
  readonly name?: string;
  /** What the value must be, where the range alone says too little ("an integer from 1 (most important) to 5"). */
  readonly text?: string;
}

/** One of a fixed list of strings. */
export interface ChoiceRule {
  readonly oneOf: readonly string[];
  /** The rule's name in errors; default "one-of". */
  readonly name?: string;
}

export type Rule = NumberRule | ChoiceRule;

/** One problem with a value: which field, which rule it broke, what the rule says, the value. */
export interface BoundsIssue {
  field: string;
  rule: string;
  message: string;
  value: unknown;
}

/** A WeirError (CONFIG_INVALID) that carries its issues, so callers can answer field by field. */
export class BoundsError extends WeirError {
  readonly issues: readonly BoundsIssue[];
  constructor(issues: readonly BoundsIssue[]) {
    super(ErrorCodes.CONFIG_INVALID, issues.map(formatBoundsIssue).join("; "));
    this.issues = issues;
  }
}

export const isChoiceRule = (rule: Rule): rule is ChoiceRule => "oneOf" in rule;

export function ruleName(rule: Rule): string {
  if (rule.name) return rule.name;
  if (isChoiceRule(rule)) return "one-of";
  return rule.integer ? "integer-range" : "range";
}

/**
 * What the rule asks for, as the end of "must be …": "an integer from 1 to 5",
 * "a number above 0 and at most 1", "an integer >= 0", "one of "share", "idle"".
 */
export function ruleText(rule: Rule): string {
  if (isChoiceRule(rule)) return `one of ${rule.oneOf.map((v) => `"${v}"`).join(", ")}`;
  if (rule.text) return rule.text;
  const what = rule.integer ? "an integer" : "a number";
  const { min, above, max } = rule;
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (above !== undefined && max !== undefined) return `${what} above ${above} and at most ${max}`;
  if (min !== undefined) return `${what} >= ${min}`;
  if (above !== undefined) return `${what} above ${above}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

/** The rule's message: "must be an integer from 1 to 5". */
export const ruleMessage = (rule: Rule): string => `must be ${ruleText(rule)}`;

/** Check one value against its rule: null when it keeps it. */
export function checkRule(field: string, rule: Rule, value: unknown): BoundsIssue | null {
  const fail = (): BoundsIssue => ({
    field,
    rule: ruleName(rule),
    message: ruleMessage(rule),
    value,
  });
  if (isChoiceRule(rule))
    return typeof value === "string" && rule.oneOf.includes(value) ? null : fail();
  if (typeof value !== "number" || !Number.isFinite(value)) return fail();
  if (rule.integer && !Number.isInteger(value)) return fail();
  if (rule.min !== undefined && value < rule.min) return fail();
  if (rule.above !== undefined && value <= rule.above) return fail();
  if (rule.max !== undefined && value > rule.max) return fail();
  return null;
}

/** "field: must be … (rule: name): got value" — one line per issue, for logs and the CLI. */
export function formatBoundsIssue(issue: BoundsIssue): string {
  return `${issue.field}: ${issue.message} (rule: ${issue.rule}): got ${JSON.stringify(issue.value) ?? "missing"}`;
}

/** A partition's bounds, in PartitionSpec's names: what config, API and runtime changes set. */
export const PARTITION_BOUND_RULES = {
  minCpuMillis: {
    min: 0,
    integer: true,
    name: "cpu-millis",
    text: "a whole number of millicores >= 0",
  },
  maxCpuMillis: {
    min: 0,
    integer: true,
    name: "cpu-millis",
    text: "a whole number of millicores >= 0",
  },
  weight: { min: 1, max: 10_000, integer: true, name: "weight-range" },
  importance: {
    min: 1,
    max: 5,
    integer: true,
    name: "importance-range",
    text: "an integer from 1 (most important) to 5",
  },
} as const satisfies Record<string, NumberRule>;

export type BoundField = keyof typeof PARTITION_BOUND_RULES;
export const BOUND_FIELDS = Object.keys(PARTITION_BOUND_RULES) as BoundField[];

/** One partition's bounds as they would be (values unchecked: they may come from a request). */
export interface BoundsCandidate {
  /** All four bounds; maxCpuMillis may be absent (config: "the capacity", not known yet). */
  bounds: { readonly [F in BoundField]?: unknown };
  /** The fields being set now: a min above the max is blamed on the one set (default: max). */
  changed?: readonly BoundField[];
}

/** A partition's issue: `index` is its place in the list; absent for a rule over all of them. */
export interface PartitionBoundsIssue extends BoundsIssue {
  field: BoundField;
  index?: number;
}

export interface BoundsContext {
  /** Managed CPUs minus the reserve; null when not known yet (no max or sum checks then). */
  capacityCpuMillis: number | null;
  /** How messages name a field (config says `min` where the spec says `minCpuMillis`). */
  label?: (field: BoundField) => string;
}

/**
 * Check every partition's bounds: each value against its rule, then min <= max, max <= the
 * capacity and the guarantees together <= the capacity. Cross-field rules are checked only
 * where the values themselves are valid. Returns no issues when all hold.
 *
 * Capacity 2,000m, guarantees 1,500m + 800m → one issue: minCpuMillis, sum-min-le-capacity,
 * value 2,300.
 */
export function checkPartitionBounds(
  partitions: readonly BoundsCandidate[],
  context: BoundsContext,
): PartitionBoundsIssue[] {
  const label = context.label ?? ((f: BoundField) => f);
  const cap = context.capacityCpuMillis;
  const issues: PartitionBoundsIssue[] = [];
  let sumMin = 0;
  let allValid = true;
  partitions.forEach((p, index) => {
    const own: PartitionBoundsIssue[] = [];
    for (const field of BOUND_FIELDS) {
      const value = p.bounds[field];
      if (value === undefined && field === "maxCpuMillis") continue;
      const issue = checkRule(field, PARTITION_BOUND_RULES[field], value);
      if (issue) own.push({ ...issue, field, index });
    }
    if (own.length > 0) {
      issues.push(...own);
      allValid = false;
      return;
    }
    const min = p.bounds.minCpuMillis as number;
    const max = p.bounds.maxCpuMillis as number | undefined;
    sumMin += min;
    if (max !== undefined && min > max) {
      const onMin = p.changed !== undefined && !p.changed.includes("maxCpuMillis");
      issues.push(
        onMin
          ? {
              field: "minCpuMillis",
              rule: "min-le-max",
              message: `must be <= ${label("maxCpuMillis")} (${max}m)`,
              value: min,
              index,
            }
          : {
              field: "maxCpuMillis",
              rule: "min-le-max",
              message: `must be >= ${label("minCpuMillis")} (${min}m)`,
              value: max,
              index,
            },
      );
    }
    if (cap !== null && max !== undefined && max > cap)
      issues.push({
        field: "maxCpuMillis",
        rule: "max-le-capacity",
        message: `must be <= the capacity (${cap}m)`,
        value: max,
        index,
      });
  });
  if (cap !== null && allValid && sumMin > cap)
    issues.push({
      field: "minCpuMillis",
      rule: "sum-min-le-capacity",
      message: `guarantees together must fit in the capacity (${cap}m)`,
      value: sumMin,
    });
  return issues;
}

/** What checkBoundsChange needs of a partition: its id and its bounds. */
export type PartitionBoundsOf = { readonly id: string } & { readonly [F in BoundField]: number };

/**
 * The issues a change to partition `id`'s bounds would cause: its values against their rules,
 * its min against its max, its max and everyone's guarantees against the capacity (when known).
 * The other partitions' bounds stay as they are, so only this partition's issues (and the sum's)
 * are reported. What the HTTP API and the manager both run on a runtime change.
 */
export function checkBoundsChange(
  partitions: readonly PartitionBoundsOf[],
  id: string,
  change: { readonly [F in BoundField]?: unknown },
  capacityCpuMillis: number | null,
): BoundsIssue[] {
  const at = partitions.findIndex((p) => p.id === id);
  if (at < 0)
    return [
      {
        field: "partition",
        rule: "known-partition",
        message: "must be a managed partition",
        value: id,
      },
    ];
  const changed = BOUND_FIELDS.filter((f) => change[f] !== undefined);
  const candidates = partitions.map((p, i): BoundsCandidate => {
    if (i !== at) return { bounds: p };
    const bounds: { [F in BoundField]?: unknown } = { ...p };
    for (const f of changed) bounds[f] = change[f];
    return { bounds, changed };
  });
  return checkPartitionBounds(candidates, { capacityCpuMillis })
    .filter((issue) => issue.index === undefined || issue.index === at)
    .map(({ field, rule, message, value }) => ({ field, rule, message, value }));
}
