// weir's HTTP API as a Hono app: read-only views of the manager, server-sent cycle records,
// Prometheus metrics, the dashboard's files, and the few runtime changes (pause, resume,
// bounds) behind a bearer token. It reads the manager only through ManagerView.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { Registry } from "prom-client";
import { BoundsError } from "../core/bounds.ts";
import { isWeirError } from "../core/errors.ts";
import { packageFileUrl } from "../core/package-files.ts";
import type { ManagerView, PartitionBoundsChange } from "../manager/view.ts";
import { DEFAULT_MAX_EVENT_CLIENTS, eventsHandler } from "./events.ts";
import { createMetrics } from "./metrics.ts";
import { chunkedBody, cyclesToReturn, recordCaches } from "./records.ts";
import { badRequest, parseLimit, requireBearer, validateBoundsChange } from "./requests.ts";
import { partitionSnapshot, partitionsSnapshot } from "./snapshot.ts";

const encoder = new TextEncoder();
const CYCLES_HEAD = encoder.encode('{"cycles":[');
const COMMA = encoder.encode(",");
const CYCLES_TAIL = encoder.encode("]}");

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
  /** Open /api/events streams at most; one more is refused with 503. Default 32. */
  maxEventClients?: number;
  /**
   * Called once per accepted change (pause, resume, a partition's bounds), after it is made,
   * with what changed and one line saying so: `weir run` logs it (the operator's audit trail).
   * Refused requests (4xx) are not reported.
   */
  onChange?: (change: ApiChange, message: string) => void;
}

/** A change made through the API, as `ApiOptions.onChange` reports it. */
export type ApiChange =
  | { kind: "pause" | "resume"; wasPaused: boolean; paused: boolean }
  | {
      kind: "bounds";
      partition: string;
      /** Each field the request set: its value before and after. */
      fields: Partial<Record<keyof PartitionBoundsChange, { from: number; to: number }>>;
    };

/** The log line of an API change. */
export function describeApiChange(change: ApiChange): string {
  if (change.kind === "bounds") {
    const fields = Object.entries(change.fields)
      .map(([f, v]) => `${f} ${v.from} -> ${v.to}`)
      .join(", ");
    return `API: ${change.partition}: bounds changed: ${fields}`;
  }
  if (change.kind === "pause")
    return change.wasPaused
      ? "API: pause asked: already paused"
      : "API: paused: sampling and recording go on, nothing is applied until resumed";
  return change.wasPaused
    ? "API: resumed: directives are applied again"
    : "API: resume asked: was not paused";
}

/** Largest request body accepted (the only body is a PATCH of four numbers). */
export const MAX_BODY_BYTES = 16 * 1024;

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

export function createApi(opts: ApiOptions): Hono {
  const { view } = opts;
  const registry = opts.registry ?? attachDefaultMetrics(view);
  const dashboardDir = opts.dashboardDir ?? defaultDashboardDir;
  const uplotDir = opts.uplotDir ?? defaultUplotDir();
  const keepAliveMs = (opts.sseKeepAliveSec ?? 15) * 1000;
  const maxEventClients = opts.maxEventClients ?? DEFAULT_MAX_EVENT_CLIENTS;
  // entries go with the records the view's history drops (historyMaxBytes bounds them both)
  const cache = recordCaches(() => view.recentRecords()[0]?.cycle);
  const app = new Hono();
  const requireToken = requireBearer(opts.token);
  const changed = (change: ApiChange) => opts.onChange?.(change, describeApiChange(change));

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

  // built and encoded once per cycle record (again after a pause, resume or bounds change),
  // then the same bytes for every request until the next record
  let partitions: { key: readonly unknown[]; bytes: Uint8Array<ArrayBuffer> } | null = null;
  let boundsChanges = 0;
  app.get("/api/partitions", (c) => {
    const records = view.recentRecords();
    const key = [records[records.length - 1], view.paused(), view.ready(), boundsChanges];
    if (!partitions || partitions.key.some((k, i) => k !== key[i]))
      partitions = { key, bytes: encoder.encode(JSON.stringify(partitionsSnapshot(view))) };
    return c.body(partitions.bytes, 200, { "Content-Type": "application/json" });
  });
  app.get("/api/partitions/:id", (c) => {
    const id = c.req.param("id");
    const p = partitionSnapshot(view, id);
    return p ? c.json(p) : c.json({ error: "not found", message: `no partition "${id}"` }, 404);
  });

  app.get("/api/cycles", (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (typeof limit !== "number") return badRequest(c, [limit]);
    const records = view.recentRecords();
    const n = cyclesToReturn(records, limit);
    const chunks: Uint8Array[] = [CYCLES_HEAD];
    for (let i = records.length - n; i < records.length; i++) {
      if (i > records.length - n) chunks.push(COMMA);
      chunks.push(cache.json.get(records[i]!));
    }
    chunks.push(CYCLES_TAIL);
    return c.body(chunkedBody(chunks), 200, { "Content-Type": "application/json" });
  });

  app.get("/api/config", (c) => c.json({ config: view.redactedConfig() ?? null }));

  app.get("/api/events", eventsHandler(view, cache, { keepAliveMs, maxEventClients }));

  app.get("/metrics", async (c) => {
    const body = await registry.metrics();
    return c.body(body, 200, { "Content-Type": registry.contentType });
  });

  const limitBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) =>
      c.json(
        {
          error: "payload too large",
          message: `a request body may have at most ${MAX_BODY_BYTES} bytes`,
        },
        413,
      ),
  });
  // before every route that takes a body: a handler registered earlier would answer first
  app.use("/api/*", async (c, next) =>
    c.req.method === "GET" || c.req.method === "HEAD" ? next() : limitBody(c, next),
  );

  for (const kind of ["pause", "resume"] as const)
    app.post(`/api/${kind}`, requireToken, (c) => {
      const wasPaused = view.paused();
      view.setPaused(kind === "pause");
      changed({ kind, wasPaused, paused: view.paused() });
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
      // the bounds as they are now (another request may have changed them while this body came)
      const before = view.specs().find((s) => s.id === id) ?? current;
      const spec = view.updateBounds(id, checked.change);
      boundsChanges++;
      const fields: Extract<ApiChange, { kind: "bounds" }>["fields"] = {};
      for (const f of Object.keys(checked.change) as Array<keyof PartitionBoundsChange>)
        if (checked.change[f] !== undefined) fields[f] = { from: before[f], to: spec[f] };
      changed({ kind: "bounds", partition: id, fields });
      return c.json({ spec });
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
