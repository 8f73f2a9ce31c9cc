// What a request may carry and the answer when it breaks a rule: the bounds change of PATCH
// /api/partitions/:id, ?limit= of /api/cycles, and the bearer token the changing routes need.
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { BOUND_FIELDS, type BoundsIssue, checkBoundsChange } from "../core/bounds.ts";
import type { PartitionSpec } from "../core/model.ts";
import type { PartitionBoundsChange } from "../manager/view.ts";
import { DEFAULT_CYCLES_LIMIT, MAX_CYCLES_LIMIT } from "./records.ts";

/** One problem with a request: which field, which rule it broke, and the value it had. */
export type ValidationIssue = BoundsIssue;

export function badRequest(c: Context, issues: ValidationIssue[]): Response {
  return c.json({ error: "invalid request", issues }, 400);
}

/**
 * Check a bounds change to partition `id` on its own and with every partition's bounds against
 * the capacity (null before the first cycle: then only the values and min <= max).
 */
export function validateBoundsChange(
  body: unknown,
  id: string,
  specs: readonly PartitionSpec[],
  capacityCpuMillis: number | null,
): { change: PartitionBoundsChange } | { issues: ValidationIssue[] } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return {
      issues: [
        { field: "body", rule: "json-object", message: "must be a JSON object", value: body },
      ],
    };
  }
  const change = body as Record<string, unknown>;
  const unknown = Object.keys(change).filter((k) => !(BOUND_FIELDS as string[]).includes(k));
  if (unknown.length > 0)
    return {
      issues: unknown.map((field) => ({
        field,
        rule: "known-fields",
        message: `is not a bound that can be changed (known: ${BOUND_FIELDS.join(", ")})`,
        value: change[field],
      })),
    };
  if (!BOUND_FIELDS.some((f) => change[f] !== undefined)) {
    return {
      issues: [
        {
          field: "body",
          rule: "non-empty",
          message: `must set at least one of ${BOUND_FIELDS.join(", ")}`,
          value: body,
        },
      ],
    };
  }
  const issues = checkBoundsChange(specs, id, change, capacityCpuMillis);
  return issues.length > 0 ? { issues } : { change: change as PartitionBoundsChange };
}

/** Parse ?limit=N for /api/cycles. */
export function parseLimit(raw: string | undefined): number | ValidationIssue {
  if (raw === undefined || raw === "") return DEFAULT_CYCLES_LIMIT;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_CYCLES_LIMIT) {
    return {
      field: "limit",
      rule: "integer-range",
      message: `must be an integer from 1 to ${MAX_CYCLES_LIMIT}`,
      value: raw,
    };
  }
  return n;
}

/**
 * The guard of the routes that change things: `Authorization: Bearer <token>` (hono's
 * bearerAuth, constant-time compare); without a token configured every request is refused.
 */
export function requireBearer(token: string | undefined): MiddlewareHandler {
  const unauthorized = (why: string) => ({ error: "unauthorized", message: why });
  const invalidAuthenticationHeader = {
    message: { error: "bad request", message: "Authorization must be 'Bearer <token>'" },
  };
  if (token !== undefined && token !== "")
    return bearerAuth({
      token,
      noAuthenticationHeader: { message: unauthorized("send Authorization: Bearer <api.token>") },
      invalidToken: { message: unauthorized("wrong token") },
      invalidAuthenticationHeader,
    });
  const disabled = unauthorized("no api.token is configured: runtime changes are disabled");
  return bearerAuth({
    verifyToken: () => false,
    noAuthenticationHeader: { message: disabled },
    invalidToken: { message: disabled },
    invalidAuthenticationHeader,
  });
}
