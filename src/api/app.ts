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
import type { ManagerView } from "../manager/view.ts";
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
  const cache = recordCaches();
  const app = new Hono();
  const requireToken = requireBearer(opts.token);

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
      const spec = view.updateBounds(id, checked.change);
      boundsChanges++;
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
