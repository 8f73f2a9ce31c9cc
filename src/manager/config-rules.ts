// The config's values and their errors: a CPU quantity, a number kept by a bounds rule (the
// check the API and the manager run too, its range also in the JSON Schema), and the one-line
// messages that name field, rule and value (`partitions[1].min: must be … (rule: …): got "abc"`).
import { z } from "zod";
import {
  checkRule,
  isChoiceRule,
  type NumberRule,
  type Rule,
  ruleMessage,
  ruleName,
} from "../core/bounds.ts";
import { type CpuMillis, cpuMillisFromCores } from "../core/units.ts";

/** A CPU amount: a number of CPUs (0.5) or a Kubernetes-style millicore string ("500m"). */
export const cpuQuantity = z
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
export const withRule = (issue: { message: string; rule: string }): string =>
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
export function checked(rule: NumberRule): z.ZodType<number>;
export function checked(rule: Rule): z.ZodType<number | string>;
export function checked(rule: Rule): z.ZodType<number | string> {
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
    // a message that names the value itself (a counter source's option check) is not given
    // it twice
    if (/\(rule: [^)]*\): got /.test(message)) return `${formatPath(path)}: ${message}`;
    return `${formatPath(path)}: ${message}: got ${describeValue(valueAt(raw, path))}`;
  });
}
