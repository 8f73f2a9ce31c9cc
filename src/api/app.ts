// weir's HTTP API as a Hono app: read-only views of the manager, server-sent cycle records,
// Prometheus metrics, the dashboard's files, and the few runtime changes (pause, resume,
// bounds) behind a bearer token. It reads the manager only through ManagerView.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import { type Context, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import type { Registry } from "prom-client";
import { BOUND_FIELDS, BoundsError, type BoundsIssue, checkBoundsChange } from "../core/bounds.ts";
import { isWeirError } from "../core/errors.ts";
import type {
  CycleRecord,
  Decision,
  Directive,
  PartitionSpec,
  Throughput,
  WeirErrorInfo,
} from "../core/model.ts";
import { packageFileUrl } from "../core/package-files.ts";
import type { ManagerView, PartitionBoundsChange, PartitionMechanisms } from "../manager/view.ts";
import { createMetrics } from "./metrics.ts";

export interface ApiOptions {
  view: ManagerView;
  /** Bearer token for the routes that change things. Absent: those routes always answer 401. */
  token?: string;
  /**
   * Registry served at /metrics. Absent: the app makes weir's metrics in a fresh registry
   * and subscribes them to `view` (for the life of the view).
   */
  registry?: Registry;
  /** Folder with index.html, app.js, style.css. Default: the repository's dashboard/. */
  dashboardDir?: string;
  /** Folder with uPlot.iife.min.js and uPlot.min.css. Default: uplot's dist/ in node_modules. */
  uplotDir?: string;
  /** Seconds between SSE keep-alive comments. Default 15. */
  sseKeepAliveSec?: number;
}

/** One problem with a request: which field, which rule it broke, and the value it had. */
export type ValidationIssue = BoundsIssue;

export const DEFAULT_CYCLES_LIMIT = 60;
export const MAX_CYCLES_LIMIT = 1000;

/** dashboard/ at the package root, from the sources and from dist/ alike. */
export const defaultDashboardDir = fileURLToPath(packageFileUrl("dashboard"));
export const defaultUplotDir = (): string =>
  dirname(createRequire(import.meta.url).resolve("uplot"));

const DASHBOARD_FILES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};
const UPLOT_FILES = ["uPlot.iife.min.js", "uPlot.min.css"];

function badRequest(c: Context, issues: ValidationIssue[]): Response {
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

/** Body of GET /api/partitions (also what `weir status` reads). */
export interface PartitionsSnapshot {
  cycle: number | null;
  atMs: number | null;
  intervalMs: number | null;
  capacityCpuMillis: number | null;
  paused: boolean;
  ready: boolean;
  partitions: Array<{
    id: string;
    spec: PartitionSpec | null;
    status: CycleRecord["partitions"][number]["status"] | "unknown";
    throughput: Throughput | null;
    decision: Decision | null;
    directive: Directive | null;
    /** The idle class and CFS burst this cgroup offers (null while it is not open). */
    mechanisms: PartitionMechanisms | null;
    written: string[];
    error: WeirErrorInfo | null;
  }>;
}

/** Per partition: its spec joined with what the latest cycle record says about it. */
export function partitionsSnapshot(view: ManagerView): PartitionsSnapshot {
  const records = view.recentRecords();
  const latest: CycleRecord | undefined = records[records.length - 1];
  const specs = view.specs();
  const byId = new Map(latest?.partitions.map((p) => [p.id, p]) ?? []);
  const mechanisms = view.mechanisms?.() ?? {};
  const ids = [
    ...specs.map((s) => s.id),
    ...[...byId.keys()].filter((id) => !specs.some((s) => s.id === id)),
  ];
  return {
    cycle: latest?.cycle ?? null,
    atMs: latest?.startedAtMs ?? null,
    intervalMs: latest?.intervalMs ?? null,
    capacityCpuMillis: latest?.capacityCpuMillis ?? null,
    paused: view.paused(),
    ready: view.ready(),
    partitions: ids.map((id) => {
      const p = byId.get(id);
      return {
        id,
        spec: specs.find((s) => s.id === id) ?? null,
        status: p?.status ?? "unknown",
        throughput: p?.throughput ?? null,
        decision: p?.decision ?? null,
        directive: p?.directive ?? null,
        mechanisms: mechanisms[id] ?? null,
        written: p?.written ?? [],
        error: p?.error ?? null,
      };
    }),
  };
}

export function createApi(opts: ApiOptions): Hono {
  const { view } = opts;
  const registry = opts.registry ?? attachDefaultMetrics(view);
  const dashboardDir = opts.dashboardDir ?? defaultDashboardDir;
  const uplotDir = opts.uplotDir ?? defaultUplotDir();
  const keepAliveMs = (opts.sseKeepAliveSec ?? 15) * 1000;
  const app = new Hono();

  const unauthorized = (why: string) => ({ error: "unauthorized", message: why });
  const requireToken =
    opts.token !== undefined && opts.token !== ""
      ? bearerAuth({
          token: opts.token,
          noAuthenticationHeader: {
            message: unauthorized("send Authorization: Bearer <api.token>"),
          },
          invalidToken: { message: unauthorized("wrong token") },
          invalidAuthenticationHeader: {
            message: { error: "bad request", message: "Authorization must be 'Bearer <token>'" },
          },
        })
      : bearerAuth({
          verifyToken: () => false,
          noAuthenticationHeader: {
            message: unauthorized("no api.token is configured: runtime changes are disabled"),
          },
          invalidToken: {
            message: unauthorized("no api.token is configured: runtime changes are disabled"),
          },
          invalidAuthenticationHeader: {
            message: { error: "bad request", message: "Authorization must be 'Bearer <token>'" },
          },
        });

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    return c.json({ error: "internal error", message: String(err.message ?? err) }, 500);
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) =>
    view.ready()
      ? c.json({ ready: true })
      : c.json({ ready: false, message: "no cycle completed yet" }, 503),
  );

  app.get("/api/partitions", (c) => c.json(partitionsSnapshot(view)));
  app.get("/api/partitions/:id", (c) => {
    const id = c.req.param("id");
    const p = partitionsSnapshot(view).partitions.find((x) => x.id === id);
    return p ? c.json(p) : c.json({ error: "not found", message: `no partition "${id}"` }, 404);
  });

  app.get("/api/cycles", (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (typeof limit !== "number") return badRequest(c, [limit]);
    const records = view.recentRecords();
    return c.json({ cycles: records.slice(Math.max(0, records.length - limit)) });
  });

  app.get("/api/config", (c) => c.json({ config: view.redactedConfig() ?? null }));

  app.get("/api/events", (c) => {
    // Replay from the ring what the client has not seen: after ?since=<cycle> (a page that
    // loaded /api/cycles first), or after Last-Event-ID (an EventSource reconnecting).
    const since = c.req.query("since");
    if (since !== undefined && !/^\d+$/.test(since)) {
      return badRequest(c, [
        {
          field: "since",
          rule: "cycle-number",
          message: "must be a cycle number (an integer >= 0)",
          value: since,
        },
      ]);
    }
    const lastEventId = Number(since ?? c.req.header("Last-Event-ID") ?? Number.NaN);
    return streamSSE(c, async (stream) => {
      let chain: Promise<void> = Promise.resolve();
      let pending = 0;
      const send = (record: CycleRecord) => {
        // A reader slower than the cycle loses intermediate records (the stream is
        // level-based like the cycle); it never makes the manager buffer without bound.
        if (stream.aborted || pending > 64) return;
        pending++;
        chain = chain
          .then(() =>
            stream.writeSSE({
              event: "cycle",
              id: String(record.cycle),
              data: JSON.stringify(record),
            }),
          )
          .catch(() => {})
          .finally(() => {
            pending--;
          });
      };
      if (Number.isFinite(lastEventId)) {
        for (const r of view.recentRecords()) if (r.cycle > lastEventId) send(r);
      }
      const unsubscribe = view.subscribe(send);
      const keepAlive = setInterval(() => {
        chain = chain
          .then(() => stream.write(": keep-alive\n\n"))
          .then(
            () => {},
            () => {},
          );
      }, keepAliveMs);
      await new Promise<void>((resolve) => {
        stream.onAbort(() => {
          unsubscribe();
          clearInterval(keepAlive);
          resolve();
        });
        if (stream.aborted) {
          unsubscribe();
          clearInterval(keepAlive);
          resolve();
        }
      });
    });
  });

  app.get("/metrics", async (c) => {
    const body = await registry.metrics();
    return c.body(body, 200, { "Content-Type": registry.contentType });
  });

  app.post("/api/pause", requireToken, (c) => {
    view.setPaused(true);
    return c.json({ paused: view.paused() });
  });
  app.post("/api/resume", requireToken, (c) => {
    view.setPaused(false);
    return c.json({ paused: view.paused() });
  });

  app.patch("/api/partitions/:id", requireToken, async (c) => {
    const id = c.req.param("id");
    const current = view.specs().find((s) => s.id === id);
    if (!current) return c.json({ error: "not found", message: `no partition "${id}"` }, 404);
    const text = await c.req.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return badRequest(c, [
        {
          field: "body",
          rule: "json",
          message: "must be valid JSON",
          value: text.length > 200 ? `${text.slice(0, 197)}...` : text,
        },
      ]);
    }
    const records = view.recentRecords();
    const capacity = records[records.length - 1]?.capacityCpuMillis ?? null;
    const checked = validateBoundsChange(body, id, view.specs(), capacity);
    if ("issues" in checked) return badRequest(c, checked.issues);
    try {
      return c.json({ spec: view.updateBounds(id, checked.change) });
    } catch (err) {
      if (err instanceof BoundsError)
        return badRequest(
          c,
          err.issues.map(({ field, rule, message, value }) => ({ field, rule, message, value })),
        );
      if (isWeirError(err)) {
        return badRequest(c, [
          { field: "body", rule: err.code, message: err.message, value: checked.change },
        ]);
      }
      throw err;
    }
  });

  app.all("/api/*", (c) =>
    c.json({ error: "not found", message: `no route ${c.req.method} ${c.req.path}` }, 404),
  );

  for (const [route, file] of Object.entries(DASHBOARD_FILES)) {
    app.get(route, serveStatic({ path: join(dashboardDir, file) }));
  }
  for (const file of UPLOT_FILES) {
    app.get(`/assets/${file}`, serveStatic({ path: join(uplotDir, file) }));
  }

  return app;
}

function attachDefaultMetrics(view: ManagerView): Registry {
  const metrics = createMetrics();
  metrics.attach(view);
  return metrics.registry;
}
