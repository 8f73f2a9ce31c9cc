// The API shares the event loop with the cycle: every answer is bounded. Exact counts pin the
// bounds; the timings are printed for the record, not asserted (this host runs benchmarks).
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it, vi } from "vitest";
import type { CycleRecord, Decision, PartitionSpec } from "../core/model.ts";
import { createApi, MAX_BODY_BYTES } from "./app.ts";
import { MemoryView } from "./memory-view.ts";
import { MAX_CYCLES_PARTITION_ENTRIES, RecordCache, recordCaches } from "./records.ts";
import { sampleRecord, sampleSpecs } from "./sample-records.ts";
import { serveApi } from "./server.ts";

const manySpecs = (n: number): PartitionSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    minCpuMillis: 0,
    maxCpuMillis: 1000,
    weight: 1,
    importance: 3,
    kind: "network" as const,
  }));

/** A record of `specs.length` partitions, each a copy of the sample's dns entry. */
function wideRecord(cycle: number, specs: PartitionSpec[]): CycleRecord {
  const base = sampleRecord(cycle, cycle * 100);
  const dns = base.partitions[1]!;
  return { ...base, partitions: specs.map((s) => ({ ...dns, id: s.id })) };
}

const ms = async (f: () => Promise<unknown>, reps = 3): Promise<number> => {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round(best * 10) / 10;
};

describe("GET /api/partitions at 10,000 partitions", () => {
  it("lists every partition once in spec order, then the record's partitions no spec has", async () => {
    const specs = manySpecs(10_000);
    const view = new MemoryView({ specs });
    const record = wideRecord(1, [...specs, ...manySpecs(10_002).slice(10_000)]);
    view.publish(record);
    const app = createApi({ view });
    const body = (await (await app.request("/api/partitions")).json()) as {
      partitions: { id: string; spec: unknown; status: string }[];
    };
    // 10,000 specs + p10000 and p10001, which only the record has (spec null)
    expect(body.partitions).toHaveLength(10_002);
    expect(body.partitions[9_999]!.id).toBe("p9999");
    expect(body.partitions[10_001]).toMatchObject({ id: "p10001", spec: null, status: "ok" });
    const one = await app.request("/api/partitions/p9999");
    expect(((await one.json()) as { id: string }).id).toBe("p9999");
    expect((await app.request("/api/partitions/p10001")).status).toBe(200);
    expect((await app.request("/api/partitions/nope")).status).toBe(404);
    const list = await ms(async () => (await app.request("/api/partitions")).text());
    const single = await ms(async () => (await app.request("/api/partitions/p9999")).text());
    // before: 340–530 ms for the list (O(N²) spec look-ups), ~2,200 ms for one entry
    console.log(`/api/partitions at 10,000: ${list} ms; /api/partitions/:id: ${single} ms`);
  });
});

describe("GET /api/cycles", () => {
  it("returns no more records than hold 60,000 partition entries", async () => {
    const specs = manySpecs(6_000);
    const view = new MemoryView({ specs });
    for (let c = 1; c <= 20; c++) {
      const base = sampleRecord(c, c * 100);
      view.publish({
        ...base,
        partitions: specs.map((s) => ({
          id: s.id,
          status: "ok" as const,
          throughput: null,
          decision: null,
          directive: null,
          written: [],
        })),
      });
    }
    const app = createApi({ view });
    const body = (await (await app.request("/api/cycles?limit=600")).json()) as {
      cycles: CycleRecord[];
    };
    // 60,000 entries ÷ 6,000 partitions a record = the last 10 records, 11..20
    expect(MAX_CYCLES_PARTITION_ENTRIES).toBe(60_000);
    expect(body.cycles.map((r) => r.cycle)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  });

  it("keeps made texts for the newest records within its budget", () => {
    let made = 0;
    const cache = new RecordCache(7, (r) => {
      made++;
      return String(r.cycle);
    });
    const r = [1, 2, 3, 4].map((c) => sampleRecord(c, c * 100)); // 3 partitions each
    for (const x of r) cache.get(x);
    // 4 × 3 = 12 entries > 7: records 1 and 2 evicted, 3 and 4 (6 entries) kept
    expect([made, cache.size]).toEqual([4, 2]);
    cache.get(r[3]!);
    cache.get(r[2]!);
    expect(made).toBe(4);
    cache.get(r[0]!); // made again, evicting record 3 (the oldest held)
    expect([made, cache.size]).toEqual([5, 2]);
  });

  it("drops what it made for a record older than any the view still holds", () => {
    const view = new MemoryView({ specs: sampleSpecs, capacity: 10 });
    let made = 0;
    const cache = new RecordCache(
      MAX_CYCLES_PARTITION_ENTRIES,
      (r) => {
        made++;
        return String(r.cycle);
      },
      () => view.recentRecords()[0]?.cycle,
    );
    for (let c = 1; c <= 100; c++) {
      view.publish(sampleRecord(c, c * 100));
      cache.get(view.recentRecords().at(-1)!); // as a live event stream does
    }
    // the budget (60,000 entries, 20,000 of these records) would keep all 100; the view keeps 10
    expect([made, cache.size]).toEqual([100, 10]);
    const caches = recordCaches(() => view.recentRecords()[0]?.cycle);
    for (const r of view.recentRecords()) caches.frame.get(r); // frames make the JSON too
    for (let c = 101; c <= 130; c++) {
      view.publish(sampleRecord(c, c * 100));
      caches.frame.get(view.recentRecords().at(-1)!);
    }
    expect([caches.json.size, caches.frame.size]).toEqual([10, 10]);
  });

  it("lets the records the history dropped go while an event stream and /api/cycles read them", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const view = new MemoryView({ specs: sampleSpecs, capacity: 10 });
    const app = createApi({ view });
    const stream = await app.request("/api/events");
    const reader = stream.body!.getReader();
    const refs: WeakRef<CycleRecord>[] = [];
    for (let c = 1; c <= 100; c++) {
      const r = sampleRecord(c, c * 100);
      refs.push(new WeakRef(r));
      view.publish(r);
      await reader.read();
      if (c % 20 === 0) await (await app.request("/api/cycles?limit=600")).arrayBuffer();
    }
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc();
    const alive = refs.filter((w) => w.deref() !== undefined).length;
    // the view's 10, and at most a few a closure still held when the collector ran
    expect(alive).toBeLessThanOrEqual(12);
  });

  it("serialises a record once however many requests and streams read it", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const app = createApi({ view });
    let toJson = 0;
    const record = sampleRecord(1, 100);
    const decision = record.partitions[0]!.decision!;
    const counted = {
      ...decision,
      toJSON(): Decision {
        toJson++;
        return { ...decision };
      },
    };
    record.partitions[0]!.decision = counted;
    const streams = await Promise.all(
      [1, 2, 3, 4, 5].map(() => app.request("/api/events?since=0")),
    );
    view.publish(record);
    const readers = streams.map((s) => s.body!.getReader());
    const frames = await Promise.all(readers.map((r) => r.read()));
    for (const f of frames) expect(new TextDecoder().decode(f.value)).toContain('"cycle":1');
    for (let i = 0; i < 3; i++) {
      const body = (await (await app.request("/api/cycles?limit=600")).json()) as {
        cycles: CycleRecord[];
      };
      expect(body.cycles[0]!.partitions[0]!.decision).toEqual(JSON.parse(JSON.stringify(decision)));
    }
    // 5 streams + 3 requests, one serialisation
    expect(toJson).toBe(1);
    await Promise.all(readers.map((r) => r.cancel()));
  });

  it("answers the dashboard's 600 records quickly", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    for (let c = 1; c <= 600; c++) view.publish(sampleRecord(c, c * 100));
    const app = createApi({ view });
    const first = await ms(async () => (await app.request("/api/cycles?limit=600")).text(), 1);
    const again = await ms(async () => (await app.request("/api/cycles?limit=600")).text());
    const body = (await (await app.request("/api/cycles?limit=600")).json()) as {
      cycles: CycleRecord[];
    };
    expect(body.cycles).toHaveLength(600);
    // before: ~40 ms on every request (600 records stringified each time)
    console.log(`/api/cycles?limit=600: first ${first} ms, then ${again} ms (cached text)`);
  });
});

describe("GET /api/events limits", () => {
  it("serves at most maxEventClients streams; a closed one frees its place", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const app = createApi({ view, maxEventClients: 2 });
    const a = await app.request("/api/events");
    const b = await app.request("/api/events");
    expect([a.status, b.status]).toEqual([200, 200]);
    const refused = await app.request("/api/events");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("10");
    expect(await refused.json()).toEqual({
      error: "too many event clients",
      message: "at most 2 /api/events streams are served at once",
    });
    await a.body!.cancel();
    await vi.waitFor(async () => {
      const c = await app.request("/api/events");
      expect(c.status).toBe(200);
      await c.body!.cancel();
    });
    await b.body!.cancel();
  });

  it("sends one shared frame per record to 50 clients (cost printed)", async () => {
    const specs = manySpecs(10_000);
    const view = new MemoryView({ specs });
    const app = createApi({ view, maxEventClients: 50 });
    const streams = await Promise.all(Array.from({ length: 50 }, () => app.request("/api/events")));
    const readers = streams.map((s) => s.body!.getReader());
    const record = wideRecord(1, specs);
    const t0 = performance.now();
    view.publish(record);
    const firsts = await Promise.all(readers.map((r) => r.read()));
    const elapsed = Math.round(performance.now() - t0);
    // every client got the very same bytes
    for (const f of firsts) expect(f.value).toBe(firsts[0]!.value);
    // before: ~13,000 ms (a JSON.stringify and an encode per client); printed, not asserted
    console.log(`one 10,000-partition record to 50 SSE clients: ${elapsed} ms`);
    await Promise.all(readers.map((r) => r.cancel()));
  });
});

describe("request limits", () => {
  it("refuses a body above 16 KiB with 413 before reading it as JSON", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const token = "0123456789abcdef-test-token";
    const app = createApi({ view, token });
    const res = await app.request("/api/partitions/web", {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
      },
      body: `{"weight": 1${" ".repeat(MAX_BODY_BYTES)}}`,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: "payload too large",
      message: "a request body may have at most 16384 bytes",
    });
  });

  it("refuses a body above 16 KiB on pause and resume too, and changes nothing", async () => {
    // before: the limit was registered after these routes, so they answered 200 to any body
    const view = new MemoryView({ specs: sampleSpecs });
    const token = "0123456789abcdef-test-token";
    const app = createApi({ view, token });
    for (const route of ["/api/pause", "/api/resume"]) {
      const res = await app.request(route, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
        body: "x".repeat(MAX_BODY_BYTES + 1),
      });
      expect(res.status).toBe(413);
      expect(view.paused()).toBe(false);
    }
    const small = await app.request("/api/pause", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    });
    expect([small.status, view.paused()]).toEqual([200, true]);
  });

  it("serveApi holds at most maxConnections connections", async () => {
    const view = new MemoryView({ specs: sampleSpecs });
    const api = await serveApi(createApi({ view }), { port: 0, maxConnections: 3 });
    try {
      const { connect } = await import("node:net");
      const sockets = await Promise.all(
        [1, 2, 3, 4].map(
          () =>
            new Promise<import("node:net").Socket>((resolve) => {
              const s = connect(api.port, "127.0.0.1", () => resolve(s));
              s.on("error", () => {});
            }),
        ),
      );
      // the 4th is accepted by the kernel and closed by the server at once
      await vi.waitFor(() =>
        expect(sockets.filter((s) => s.closed || s.readyState !== "open").length).toBe(1),
      );
      for (const s of sockets) s.destroy();
    } finally {
      await api.close();
    }
  });
});
