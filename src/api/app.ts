// weir's HTTP API as a Hono app: read-only views of the manager, server-sent cycle records,
// Prometheus metrics, the dashboard's files, and the few runtime changes (pause, resume,
// bounds) behind a bearer token. It reads the manager only through ManagerView.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import { type Context, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
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
  /** Open /api/events streams at most; one more is refused with 503. Default 32. */
  maxEventClients?: number;
}

/** One problem with a request: which field, which rule it broke, and the value it had. */
export type ValidationIssue = BoundsIssue;

export const DEFAULT_CYCLES_LIMIT = 60;
export const MAX_CYCLES_LIMIT = 1000;
/**
 * /api/cycles answers at most this many partition entries (records × partitions per record):
 * the dashboard's 600 records up to 100 partitions, 6 records at 10,000 partitions. The answer
 * is built on the event loop the cycle runs on. Replays of /api/events use the same budget.
 */
export const MAX_CYCLES_PARTITION_ENTRIES = 60_000;
export const DEFAULT_MAX_EVENT_CLIENTS = 32;
/** Largest request body accepted (the only body is a PATCH of four numbers). */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * Per record, something made from it once (its JSON text, its SSE frame) and reused by every
 * request and stream, kept for the newest records up to `budget` partition entries (a record
 * larger than the budget alone is still kept, as the only one). Records are not changed once
 * published; a decision's `why` is built by its toJSON, so this is where the cost is.
 */
export class RecordCache<T> {
  readonly #made = new Map<CycleRecord, { value: T; entries: number }>();
  #entries = 0;
  constructor(
    readonly budget: number,
    readonly make: (record: CycleRecord) => T,
  ) {}
  get(record: CycleRecord): T {
    const hit = this.#made.get(record);
    if (hit) return hit.value;
    const entries = Math.max(1, record.partitions.length);
    const value = this.make(record);
    this.#made.set(record, { value, entries });
    this.#entries += entries;
    for (const [r, m] of this.#made) {
      if (this.#entries <= this.budget || r === record) break;
      this.#made.delete(r);
      this.#entries -= m.entries;
    }
    return value;
  }
  /** Records held now. */
  get size(): number {
    return this.#made.size;
  }
}

const encoder = new TextEncoder();
/** The record's JSON text, and its SSE frame as bytes — `event: cycle`, the JSON as one `data:` line (JSON has no raw newline), its cycle as `id:`, in hono's writeSSE order. */
export function recordCaches(): { text: RecordCache<string>; frame: RecordCache<Uint8Array> } {
  const text = new RecordCache(MAX_CYCLES_PARTITION_ENTRIES, (r) => JSON.stringify(r));
  const frame = new RecordCache(MAX_CYCLES_PARTITION_ENTRIES / 3, (r) =>
    encoder.encode(`event: cycle\ndata: ${text.get(r)}\nid: ${r.cycle}\n\n`),
  );
  return { text, frame };
}

/** How many of the last records /api/cycles returns for `limit`, within the entry budget. */
export function cyclesToReturn(records: readonly CycleRecord[], limit: number): number {
  let count = 0;
  let entries = 0;
  for (let i = records.length - 1; i >= 0 && count < limit; i--) {
    entries += Math.max(1, records[i]!.partitions.length);
    if (entries > MAX_CYCLES_PARTITION_ENTRIES && count > 0) break;
    count++;
  }
  return count;
}

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

type PartitionEntry = PartitionsSnapshot["partitions"][number];

function partitionEntry(
  id: string,
  spec: PartitionSpec | null,
  p: CycleRecord["partitions"][number] | undefined,
  mechanisms: PartitionMechanisms | null | undefined,
): PartitionEntry {
  return {
    id,
    spec,
    status: p?.status ?? "unknown",
    throughput: p?.throughput ?? null,
    decision: p?.decision ?? null,
    directive: p?.directive ?? null,
    mechanisms: mechanisms ?? null,
    written: p?.written ?? [],
    error: p?.error ?? null,
  };
}

const latestRecord = (view: ManagerView): CycleRecord | undefined => {
  const records = view.recentRecords();
  return records[records.length - 1];
};

/** Per partition: its spec joined with what the latest cycle record says about it (O(N)). */
export function partitionsSnapshot(view: ManagerView): PartitionsSnapshot {
  const latest = latestRecord(view);
  const specs = view.specs();
  const byId = new Map(latest?.partitions.map((p) => [p.id, p]) ?? []);
  const mechanisms = view.mechanisms?.() ?? {};
  const partitions: PartitionEntry[] = [];
  const listed = new Set<string>();
  for (const spec of specs) {
    if (listed.has(spec.id)) continue;
    listed.add(spec.id);
    partitions.push(partitionEntry(spec.id, spec, byId.get(spec.id), mechanisms[spec.id]));
  }
  // partitions the record still has but the specs no longer do (removed at runtime)
  for (const [id, p] of byId)
    if (!listed.has(id)) partitions.push(partitionEntry(id, null, p, mechanisms[id]));
  return {
    cycle: latest?.cycle ?? null,
    atMs: latest?.startedAtMs ?? null,
    intervalMs: latest?.intervalMs ?? null,
    capacityCpuMillis: latest?.capacityCpuMillis ?? null,
    paused: view.paused(),
    ready: view.ready(),
    partitions,
  };
}

/** One entry of the snapshot, without building the others (null when unknown). */
export function partitionSnapshot(view: ManagerView, id: string): PartitionEntry | null {
  const spec = view.specs().find((s) => s.id === id) ?? null;
  const p = latestRecord(view)?.partitions.find((x) => x.id === id);
  if (!spec && !p) return null;
  return partitionEntry(id, spec, p, view.mechanisms?.()[id]);
}

export function createApi(opts: ApiOptions): Hono {
  const { view } = opts;
  const registry = opts.registry ?? attachDefaultMetrics(view);
  const dashboardDir = opts.dashboardDir ?? defaultDashboardDir;
  const uplotDir = opts.uplotDir ?? defaultUplotDir();
  const keepAliveMs = (opts.sseKeepAliveSec ?? 15) * 1000;
  const maxEventClients = opts.maxEventClients ?? DEFAULT_MAX_EVENT_CLIENTS;
  let eventClients = 0;
  const cache = recordCaches();
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
    const p = partitionSnapshot(view, id);
    return p ? c.json(p) : c.json({ error: "not found", message: `no partition "${id}"` }, 404);
  });

  app.get("/api/cycles", (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (typeof limit !== "number") return badRequest(c, [limit]);
    const records = view.recentRecords();
    const n = cyclesToReturn(records, limit);
    let body = '{"cycles":[';
    for (let i = records.length - n; i < records.length; i++)
      body += (i > records.length - n ? "," : "") + cache.text.get(records[i]!);
    return c.body(`${body}]}`, 200, { "Content-Type": "application/json" });
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
    if (eventClients >= maxEventClients) {
      c.header("Retry-After", "10");
      return c.json(
        {
          error: "too many event clients",
          message: `at most ${maxEventClients} /api/events streams are served at once`,
        },
        503,
      );
    }
    eventClients++;
    let counted = true;
    const release = () => {
      if (counted) eventClients--;
      counted = false;
    };
    return streamSSE(c, async (stream) => {
      try {
        let chain: Promise<void> = Promise.resolve();
        let pending = 0;
        const send = (record: CycleRecord) => {
          // A reader slower than the cycle loses intermediate records (the stream is
          // level-based like the cycle); it never makes the manager buffer without bound.
          if (stream.aborted || pending > 64) return;
          pending++;
          chain = chain
            // encoded once per record, the same bytes for every client
            .then(() => stream.write(cache.frame.get(record)))
            .then(
              () => {},
              () => {},
            )
            .finally(() => {
              pending--;
            });
        };
        if (Number.isFinite(lastEventId)) {
          // within the same budget as /api/cycles
          const records = view.recentRecords().filter((r) => r.cycle > lastEventId);
          const n = cyclesToReturn(records, records.length);
          for (let i = records.length - n; i < records.length; i++) send(records[i]!);
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
            release();
            resolve();
          });
          if (stream.aborted) {
            unsubscribe();
            clearInterval(keepAlive);
            release();
            resolve();
          }
        });
      } finally {
        release();
      }
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
  app.use("/api/*", async (c, next) =>
    c.req.method === "GET" || c.req.method === "HEAD" ? next() : limitBody(c, next),
  );

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
