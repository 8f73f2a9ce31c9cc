import { describe, expect, it, vi } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import { type ApiChange, createApi } from "./app.ts";
import { MemoryView } from "./memory-view.ts";
import { MAX_CYCLES_LIMIT } from "./records.ts";
import { sampleRecord, sampleSpecs } from "./sample-records.ts";

const TOKEN = "0123456789abcdef-test-token";
const config = { intervalMs: 100, api: { listen: "127.0.0.1:9470", token: "<redacted>" } };

function setup(
  opts: {
    token?: string;
    records?: number;
    onChange?: (change: ApiChange, message: string) => void;
  } = {},
) {
  const view = new MemoryView({ specs: sampleSpecs, config });
  for (let i = 1; i <= (opts.records ?? 3); i++) view.publish(sampleRecord(i, 1_000 + i * 100));
  const app = createApi({
    view,
    ...(opts.token === undefined ? {} : { token: opts.token }),
    ...(opts.onChange ? { onChange: opts.onChange } : {}),
  });
  return { view, app };
}

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
const jsonBody = (body: unknown, token = TOKEN) => ({
  method: "PATCH",
  headers: { ...auth(token), "Content-Type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

describe("health and readiness", () => {
  it("/healthz answers 200 always; /readyz 503 until the first cycle, then 200", async () => {
    const { app, view } = setup({ records: 0 });
    expect((await app.request("/healthz")).status).toBe(200);
    const notReady = await app.request("/readyz");
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ ready: false, message: "no cycle completed yet" });
    view.publish(sampleRecord(1, 1000));
    const ready = await app.request("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
  });
});

describe("GET /api/partitions", () => {
  it("joins each spec with the latest record's throughput, decision and directive", async () => {
    const { app } = setup();
    const res = await app.request("/api/partitions");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      cycle: 3,
      atMs: 1300,
      intervalMs: 100,
      capacityCpuMillis: 2000,
      paused: false,
      ready: true,
    });
    expect(body.partitions.map((p: { id: string }) => p.id)).toEqual(["web", "dns", "batch"]);
    const web = body.partitions[0];
    expect(web.spec).toEqual(sampleSpecs[0]);
    expect(web.status).toBe("ok");
    expect(web.throughput.offeredPacketsPerSec).toBe(3000);
    expect(web.throughput.servedPacketsPerSec).toBe(2250);
    expect(web.decision.cpuMillis).toBe(800);
    expect(web.decision.why).toMatch(/raised 500m -> 800m/);
    // no cap: JSON has no Infinity, so the API says null
    expect(web.directive).toEqual({
      partition: "web",
      cpuMillis: 800,
      weight: 4000,
      idle: false,
      capCpuMillis: null,
      burstCpuMillis: 0,
      capReason: null,
      cpuCount: 2,
    });
  });

  it("answers the same snapshot until a new record, a pause or a bounds change, then the new one", async () => {
    const { app, view } = setup({ token: TOKEN });
    const read = async () =>
      (await (await app.request("/api/partitions")).json()) as {
        cycle: number;
        paused: boolean;
        partitions: Array<{ spec: { weight: number } }>;
      };
    expect((await read()).cycle).toBe(3);
    expect((await read()).cycle).toBe(3);
    view.publish(sampleRecord(4, 1_400));
    expect((await read()).cycle).toBe(4);
    await app.request("/api/pause", { method: "POST", headers: auth(TOKEN) });
    expect((await read()).paused).toBe(true);
    expect((await app.request("/api/partitions/web", jsonBody({ weight: 7 }))).status).toBe(200);
    expect((await read()).partitions[0]!.spec.weight).toBe(7);
  });

  it("shows a configured partition without data as status unknown", async () => {
    const view = new MemoryView({
      specs: [...sampleSpecs, { ...sampleSpecs[1]!, id: "new" }],
    });
    view.publish(sampleRecord(7, 700));
    const body = await (await createApi({ view }).request("/api/partitions")).json();
    expect(body.partitions[3]).toMatchObject({ id: "new", status: "unknown", throughput: null });
  });

  it("shows each partition's allocation desired vs applied, and since when they differ", async () => {
    const { view, app } = setup();
    const held = { capCpuMillis: Number.POSITIVE_INFINITY, weight: 100, idle: false };
    const allocations = {
      web: {
        desired: { ...held, capCpuMillis: 800, weight: 4000 },
        applied: held,
        inForce: false,
        differsSinceMs: 1100,
      },
      dns: { desired: held, applied: held, inForce: true, differsSinceMs: null },
    };
    Object.assign(view, { allocations: () => allocations });
    const body = await (await app.request("/api/partitions")).json();
    // no cap: JSON has no Infinity, so the API says null
    expect(body.partitions.map((p: { allocation: unknown }) => p.allocation)).toEqual([
      {
        desired: { capCpuMillis: 800, weight: 4000, idle: false },
        applied: { capCpuMillis: null, weight: 100, idle: false },
        inForce: false,
        differsSinceMs: 1100,
      },
      {
        desired: { capCpuMillis: null, weight: 100, idle: false },
        applied: { capCpuMillis: null, weight: 100, idle: false },
        inForce: true,
        differsSinceMs: null,
      },
      null, // batch: not open
    ]);
    const web = await (await app.request("/api/partitions/web")).json();
    expect(web.allocation.differsSinceMs).toBe(1100);
  });

  it("GET /api/partitions/:id gives one partition, 404 for an unknown one", async () => {
    const { app } = setup();
    const dns = await (await app.request("/api/partitions/dns")).json();
    expect(dns.decision.cpuMillis).toBe(360);
    const missing = await app.request("/api/partitions/nope");
    expect(missing.status).toBe(404);
    expect((await missing.json()).message).toBe('no partition "nope"');
  });
});

describe("GET /api/cycles", () => {
  it("returns the most recent records, oldest first, each decision with its why", async () => {
    const { app } = setup({ records: 5 });
    const body = await (await app.request("/api/cycles?limit=2")).json();
    expect(body.cycles.map((r: CycleRecord) => r.cycle)).toEqual([4, 5]);
    const whys = body.cycles[1].partitions.map(
      (p: CycleRecord["partitions"][0]) => p.decision?.why,
    );
    expect(whys[2]).toBe("batch: gets what is left, 2000m - 800m - 360m = 840m");
    const all = await (await app.request("/api/cycles")).json();
    expect(all.cycles).toHaveLength(5);
  });

  it.each([["abc"], ["0"], ["-3"], ["2.5"], [String(MAX_CYCLES_LIMIT + 1)]])(
    "rejects limit=%s with 400 naming field, rule and value",
    async (limit) => {
      const { app } = setup();
      const res = await app.request(`/api/cycles?limit=${encodeURIComponent(limit)}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: "invalid request",
        issues: [
          {
            field: "limit",
            rule: "integer-range",
            message: `must be an integer from 1 to ${MAX_CYCLES_LIMIT}`,
            value: limit,
          },
        ],
      });
    },
  );
});

describe("GET /api/config", () => {
  it("returns the view's redacted config", async () => {
    const { app } = setup();
    const body = await (await app.request("/api/config")).json();
    expect(body).toEqual({ config });
    expect(JSON.stringify(body)).not.toContain(TOKEN);
  });
});

describe("GET /metrics", () => {
  it("serves weir's own registry in the Prometheus text format, fed by the view", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const app = createApi({ view });
    view.publish(sampleRecord(1, 100));
    view.publish(sampleRecord(2, 200));
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    // two cycles of 3000 pkt/s offered over 100 ms windows: 2 x 3000 x 0.1 = 600
    expect(text).toContain('weir_partition_packets_total{partition="web",direction="in"} 600');
    expect(text).toContain('weir_partition_cpu_allocation_cores{partition="web"} 0.8');
    expect(text).not.toContain("nodejs_");
    expect(text).not.toContain("process_cpu");
  });
});

describe("mutations need the bearer token", () => {
  const mutations: Array<[string, RequestInit]> = [
    ["/api/pause", { method: "POST" }],
    ["/api/resume", { method: "POST" }],
    ["/api/partitions/web", { method: "PATCH", body: JSON.stringify({ weight: 300 }) }],
  ];

  it.each(mutations)("%s without Authorization answers 401", async (path, init) => {
    const { app, view } = setup({ token: TOKEN });
    const res = await app.request(path, init);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(view.paused()).toBe(false);
    expect(view.specs()[0]!.weight).toBe(200);
  });

  it.each(mutations)("%s with a wrong token answers 401", async (path, init) => {
    const { app, view } = setup({ token: TOKEN });
    const res = await app.request(path, { ...init, headers: auth("wrong-token-wrong-token") });
    expect(res.status).toBe(401);
    expect((await res.json()).message).toBe("wrong token");
    expect(view.specs()[0]!.weight).toBe(200);
  });

  it.each(mutations)(
    "%s answers 401 when no token is configured, whatever is sent",
    async (path, init) => {
      const { app, view } = setup();
      const res = await app.request(path, { ...init, headers: auth(TOKEN) });
      expect(res.status).toBe(401);
      expect((await res.json()).message).toMatch(/no api.token is configured/);
      expect(view.paused()).toBe(false);
    },
  );

  it("pause and resume with the right token change the view", async () => {
    const { app, view } = setup({ token: TOKEN });
    const paused = await app.request("/api/pause", { method: "POST", headers: auth(TOKEN) });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toEqual({ paused: true });
    expect(view.paused()).toBe(true);
    expect((await (await app.request("/api/partitions")).json()).paused).toBe(true);
    const resumed = await app.request("/api/resume", { method: "POST", headers: auth(TOKEN) });
    expect(await resumed.json()).toEqual({ paused: false });
    expect(view.paused()).toBe(false);
  });
});

describe("onChange: the audit trail of changes made through the API", () => {
  it("reports each accepted pause, resume and bounds change once, with what changed", async () => {
    // before: the routes changed weir and nothing said so (no line in weir's log)
    const seen: Array<[ApiChange, string]> = [];
    const { app } = setup({ token: TOKEN, onChange: (c, m) => seen.push([c, m]) });
    const post = (path: string) => app.request(path, { method: "POST", headers: auth(TOKEN) });
    expect((await post("/api/pause")).status).toBe(200);
    expect((await post("/api/pause")).status).toBe(200);
    expect((await post("/api/resume")).status).toBe(200);
    const res = await app.request(
      "/api/partitions/web",
      jsonBody({ minCpuMillis: 300, weight: 300 }),
    );
    expect(res.status).toBe(200);
    expect(seen).toEqual([
      [
        { kind: "pause", wasPaused: false, paused: true },
        "API: paused: sampling and recording go on, nothing is applied until resumed",
      ],
      [{ kind: "pause", wasPaused: true, paused: true }, "API: pause asked: already paused"],
      [
        { kind: "resume", wasPaused: true, paused: false },
        "API: resumed: directives are applied again",
      ],
      [
        {
          kind: "bounds",
          partition: "web",
          fields: {
            minCpuMillis: { from: 100, to: 300 },
            weight: { from: 200, to: 300 },
          },
        },
        "API: web: bounds changed: minCpuMillis 100 -> 300, weight 200 -> 300",
      ],
    ]);
  });

  it("reports no refused request (401, 400, 404, 413)", async () => {
    const seen: unknown[] = [];
    const { app } = setup({ token: TOKEN, onChange: (c) => seen.push(c) });
    expect((await app.request("/api/pause", { method: "POST" })).status).toBe(401);
    expect(
      (await app.request("/api/resume", { method: "POST", headers: auth("wrong-token-wrong") }))
        .status,
    ).toBe(401);
    expect((await app.request("/api/partitions/web", jsonBody({ weight: 0 }))).status).toBe(400);
    expect((await app.request("/api/partitions/web", jsonBody("{"))).status).toBe(400);
    expect((await app.request("/api/partitions/nope", jsonBody({ weight: 3 }))).status).toBe(404);
    const big = jsonBody({ weight: 3, pad: "x".repeat(20_000) });
    expect((await app.request("/api/partitions/web", big)).status).toBe(413);
    expect(seen).toEqual([]);
  });
});

describe("PATCH /api/partitions/:id", () => {
  it("changes the bounds and returns the new spec", async () => {
    const { app, view } = setup({ token: TOKEN });
    const res = await app.request(
      "/api/partitions/web",
      jsonBody({ minCpuMillis: 200, maxCpuMillis: 1200, weight: 300, importance: 2 }),
    );
    expect(res.status).toBe(200);
    const expected = {
      ...sampleSpecs[0],
      minCpuMillis: 200,
      maxCpuMillis: 1200,
      weight: 300,
      importance: 2,
    };
    expect(await res.json()).toEqual({ spec: expected });
    expect(view.specs()[0]).toEqual(expected);
  });

  it("answers 404 for a partition that is not managed", async () => {
    const { app } = setup({ token: TOKEN });
    const res = await app.request("/api/partitions/nope", jsonBody({ weight: 3 }));
    expect(res.status).toBe(404);
  });

  it.each([
    [
      { weight: 0 },
      {
        field: "weight",
        rule: "weight-range",
        message: "must be an integer from 1 to 10000",
        value: 0,
      },
    ],
    [
      { importance: 7 },
      {
        field: "importance",
        rule: "importance-range",
        message: "must be an integer from 1 (most important) to 5",
        value: 7,
      },
    ],
    [
      { minCpuMillis: "500m" },
      {
        field: "minCpuMillis",
        rule: "cpu-millis",
        message: "must be a whole number of millicores >= 0",
        value: "500m",
      },
    ],
    [
      { maxCpuMillis: 2.5 },
      {
        field: "maxCpuMillis",
        rule: "cpu-millis",
        message: "must be a whole number of millicores >= 0",
        value: 2.5,
      },
    ],
    [
      { cpu: 3 },
      {
        field: "cpu",
        rule: "known-fields",
        message:
          "is not a bound that can be changed (known: minCpuMillis, maxCpuMillis, weight, importance)",
        value: 3,
      },
    ],
    // web's max is 1500: a min of 1600 alone would exceed it
    [
      { minCpuMillis: 1600 },
      {
        field: "minCpuMillis",
        rule: "min-le-max",
        message: "must be <= maxCpuMillis (1500m)",
        value: 1600,
      },
    ],
    // web's min is 100: a max of 50 alone would be under it
    [
      { maxCpuMillis: 50 },
      {
        field: "maxCpuMillis",
        rule: "min-le-max",
        message: "must be >= minCpuMillis (100m)",
        value: 50,
      },
    ],
    // the records' capacity is 2000m
    [
      { maxCpuMillis: 2500 },
      {
        field: "maxCpuMillis",
        rule: "max-le-capacity",
        message: "must be <= the capacity (2000m)",
        value: 2500,
      },
    ],
    // web 1950m + dns 100m + batch 0m = 2050m > the records' 2000m
    [
      { minCpuMillis: 1950, maxCpuMillis: 2000 },
      {
        field: "minCpuMillis",
        rule: "sum-min-le-capacity",
        message: "guarantees together must fit in the capacity (2000m)",
        value: 2050,
      },
    ],
    [
      {},
      {
        field: "body",
        rule: "non-empty",
        message: "must set at least one of minCpuMillis, maxCpuMillis, weight, importance",
        value: {},
      },
    ],
    [
      [1, 2],
      { field: "body", rule: "json-object", message: "must be a JSON object", value: [1, 2] },
    ],
    [
      "{weight: 3",
      { field: "body", rule: "json", message: "must be valid JSON", value: "{weight: 3" },
    ],
  ])("rejects %j with 400 naming field, rule and value", async (body, issue) => {
    const { app, view } = setup({ token: TOKEN });
    const res = await app.request("/api/partitions/web", jsonBody(body));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "invalid request", issues: [issue] });
    expect(view.specs()[0]).toEqual(sampleSpecs[0]);
  });
});

/** Read an SSE body until `count` complete events arrived; returns them parsed. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
): Promise<Array<{ event?: string; id?: string; data: string }>> {
  const decoder = new TextDecoder();
  let buffer = "";
  const events: Array<{ event?: string; id?: string; data: string }> = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const ev: { event?: string; id?: string; data: string } = { data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) ev.event = line.slice(7);
        else if (line.startsWith("id: ")) ev.id = line.slice(4);
        else if (line.startsWith("data: ")) ev.data += line.slice(6);
      }
      if (ev.data) events.push(ev);
      end = buffer.indexOf("\n\n");
    }
  }
  return events;
}

describe("GET /api/events", () => {
  it("streams each new cycle record and unsubscribes when the client goes away", async () => {
    const { app, view } = setup();
    // The app's own metrics subscribe once; the stream adds one more while it is open.
    const before = view.subscriberCount();
    const res = await app.request("/api/events");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    await vi.waitFor(() => expect(view.subscriberCount()).toBe(before + 1));
    const record = sampleRecord(4, 1400, 1.5);
    view.publish(record);
    const reader = res.body!.getReader();
    const [ev] = await readEvents(reader, 1);
    expect(ev).toMatchObject({ event: "cycle", id: "4" });
    expect(JSON.parse(ev!.data)).toEqual(JSON.parse(JSON.stringify(record)));
    await reader.cancel();
    await vi.waitFor(() => expect(view.subscriberCount()).toBe(before));
  });

  it("replays the records after Last-Event-ID from the ring on reconnect", async () => {
    const { app, view } = setup({ records: 5 });
    const before = view.subscriberCount();
    const res = await app.request("/api/events", { headers: { "Last-Event-ID": "3" } });
    const reader = res.body!.getReader();
    const events = await readEvents(reader, 2);
    expect(events.map((e) => e.id)).toEqual(["4", "5"]);
    await reader.cancel();
    await vi.waitFor(() => expect(view.subscriberCount()).toBe(before));
  });
});

describe("dashboard files", () => {
  it("serves the page, its script and style, and uPlot from node_modules", async () => {
    const { app } = setup();
    const page = await app.request("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain("/assets/uPlot.iife.min.js");
    expect(html).toContain("/app.js");
    const js = await app.request("/app.js");
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await app.request("/style.css")).headers.get("content-type")).toMatch(/^text\/css/);
    const uplot = await app.request("/assets/uPlot.iife.min.js");
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toContain("uPlot");
    expect((await app.request("/assets/uPlot.min.css")).status).toBe(200);
  });

  it("serves nothing else from disk", async () => {
    const { app } = setup();
    expect((await app.request("/assets/uPlot.d.ts")).status).toBe(404);
    expect((await app.request("/../package.json")).status).toBe(404);
    expect((await app.request("/api/nothing")).status).toBe(404);
  });
});

describe("GET /api/events?since", () => {
  it("replays the records after ?since=<cycle> (a page that loaded /api/cycles first)", async () => {
    const { app, view } = setup({ records: 5 });
    const before = view.subscriberCount();
    const res = await app.request("/api/events?since=2");
    const reader = res.body!.getReader();
    const events = await readEvents(reader, 3);
    expect(events.map((e) => e.id)).toEqual(["3", "4", "5"]);
    await reader.cancel();
    await vi.waitFor(() => expect(view.subscriberCount()).toBe(before));
  });

  it("replays every record after since within the /api/cycles budget, then goes on live", async () => {
    // before: the replay went through the live reader's bound of 64 pending records, so
    // ?since=0 over 200 records sent cycles 1..65 and then jumped to the next live one
    const { app, view } = setup({ records: 200 });
    const res = await app.request("/api/events?since=0");
    const reader = res.body!.getReader();
    view.publish(sampleRecord(201, 1_000 + 201 * 100));
    const events = await readEvents(reader, 201);
    expect(events.map((e) => Number(e.id))).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
    await reader.cancel();
  });

  it("resumes a reconnecting EventSource after its Last-Event-ID, not its first ?since", async () => {
    // An EventSource reconnects to the URL it was opened with (the dashboard's carries the
    // ?since of its first connection) and sends the id of the last event it got. Before,
    // ?since won: the client got again what it had seen (from cycle 3) instead of 9 and 10.
    const { app, view } = setup({ records: 10 });
    const res = await app.request("/api/events?since=2", { headers: { "Last-Event-ID": "8" } });
    const reader = res.body!.getReader();
    view.publish(sampleRecord(11, 1_000 + 11 * 100));
    const events = await readEvents(reader, 3);
    expect(events.map((e) => e.id)).toEqual(["9", "10", "11"]);
    await reader.cancel();
  });

  it("replays all of this run's records to a client whose Last-Event-ID is an earlier run's", async () => {
    // weir restarted: its cycles count from 1 again, and a dashboard open across the restart
    // reconnects with the old run's last id (8,000). Before, it got none of cycles 1..5.
    const { app } = setup({ records: 5 });
    const res = await app.request("/api/events?since=7990", {
      headers: { "Last-Event-ID": "8000" },
    });
    const reader = res.body!.getReader();
    const events = await readEvents(reader, 5);
    expect(events.map((e) => e.id)).toEqual(["1", "2", "3", "4", "5"]);
    await reader.cancel();
  });

  it("falls back to ?since when Last-Event-ID is not a cycle number", async () => {
    const { app } = setup({ records: 5 });
    const res = await app.request("/api/events?since=3", { headers: { "Last-Event-ID": "x" } });
    const reader = res.body!.getReader();
    const events = await readEvents(reader, 2);
    expect(events.map((e) => e.id)).toEqual(["4", "5"]);
    await reader.cancel();
  });

  it("rejects a since that is not a cycle number", async () => {
    const { app } = setup();
    const res = await app.request("/api/events?since=yesterday");
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "invalid request",
      issues: [
        {
          field: "since",
          rule: "cycle-number",
          message: "must be a cycle number (an integer >= 0)",
          value: "yesterday",
        },
      ],
    });
  });
});
