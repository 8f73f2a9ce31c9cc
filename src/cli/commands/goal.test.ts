import { describe, expect, it } from "vitest";
import { createApi } from "../../api/app.ts";
import { MemoryView } from "../../api/memory-view.ts";
import { sampleRecord, sampleSpecs } from "../../api/sample-records.ts";
import { serveApi } from "../../api/server.ts";
import type { PartitionsSnapshot } from "../../api/snapshot.ts";
import type { CycleRecord } from "../../core/model.ts";
import {
  averageThroughput,
  convertGoal,
  formatGoal,
  type GoalIo,
  goalReport,
  runGoal,
  samplePartition,
} from "./goal.ts";
import { fetchStatus } from "./status.ts";

const url = "http://127.0.0.1:9470";

describe("averageThroughput", () => {
  it("weights each cycle's rates by its window: packets counted ÷ time covered", () => {
    const avg = averageThroughput([
      { cycle: 1, windowMs: 100, servedPacketsPerSec: 2000, offeredPacketsPerSec: 2500 },
      { cycle: 2, windowMs: 100, servedPacketsPerSec: 2400, offeredPacketsPerSec: 2500 },
      { cycle: 3, windowMs: 200, servedPacketsPerSec: 3000, offeredPacketsPerSec: 4000 },
    ]);
    // served (2000×100 + 2400×100 + 3000×200) ÷ 400 = 1,040,000 ÷ 400 = 2600
    // offered (2500×100 + 2500×100 + 4000×200) ÷ 400 = 1,300,000 ÷ 400 = 3250
    expect(avg).toEqual({
      cycles: 3,
      coveredMs: 400,
      servedPacketsPerSec: 2600,
      offeredPacketsPerSec: 3250,
    });
  });

  it("equal windows give the plain mean; no usable window gives null", () => {
    expect(
      averageThroughput([
        { cycle: 1, windowMs: 100, servedPacketsPerSec: 1000, offeredPacketsPerSec: 1000 },
        { cycle: 2, windowMs: 100, servedPacketsPerSec: 1100, offeredPacketsPerSec: 1300 },
      ]),
    ).toEqual({ cycles: 2, coveredMs: 200, servedPacketsPerSec: 1050, offeredPacketsPerSec: 1150 });
    expect(averageThroughput([])).toBeNull();
    expect(
      averageThroughput([
        { cycle: 1, windowMs: 0, servedPacketsPerSec: 5, offeredPacketsPerSec: 5 },
      ]),
    ).toBeNull();
  });
});

describe("convertGoal", () => {
  it("UDP request/reply: one served packet per request, the goal is the target", () => {
    // 1,125 pkt/s ÷ 1,125 req/s = 1; 1 × 1,500 = 1,500
    expect(
      convertGoal({ servedPacketsPerSec: 1125, offeredPacketsPerSec: 1125 }, 1125, 1500),
    ).toEqual({ servedPacketsPerRequest: 1, offeredPacketsPerRequest: 1, goalPacketsPerSec: 1500 });
  });

  it("TCP with separate ACKs: packets per request above 1 in each direction", () => {
    // served 2,250 ÷ 1,125 = 2 (reply + ACK); offered 3,000 ÷ 1,125 = 2.666…; 2 × 1,500 = 3,000
    const c = convertGoal({ servedPacketsPerSec: 2250, offeredPacketsPerSec: 3000 }, 1125, 1500);
    expect(c.servedPacketsPerRequest).toBe(2);
    expect(c.offeredPacketsPerRequest).toBeCloseTo(8 / 3, 12);
    expect(c.goalPacketsPerSec).toBe(3000);
  });

  it("rounds the goal up, but not a binary fraction of a whole goal", () => {
    // 2,251 × 1,500 ÷ 1,125 = 3,001.33… → 3,002
    expect(
      convertGoal({ servedPacketsPerSec: 2251, offeredPacketsPerSec: 2251 }, 1125, 1500)
        .goalPacketsPerSec,
    ).toBe(3002);
    // 1,027.4 × 1,500 ÷ 1,100 = 1,401 exactly; in doubles 1401.0000000000002
    expect((1027.4 * 1500) / 1100).toBeGreaterThan(1401);
    expect(
      convertGoal({ servedPacketsPerSec: 1027.4, offeredPacketsPerSec: 1027.4 }, 1100, 1500)
        .goalPacketsPerSec,
    ).toBe(1401);
  });
});

/** weir's real API (Hono app on a MemoryView) read without a socket, on a virtual clock. */
function virtualWeir(
  opts: { intervalMs?: number; record?: (cycle: number) => CycleRecord; running?: boolean } = {},
) {
  const view = new MemoryView({ specs: sampleSpecs });
  const app = createApi({ view });
  const intervalMs = opts.intervalMs ?? 100;
  const record =
    opts.record ??
    ((cycle: number) => {
      const r = sampleRecord(cycle, cycle * intervalMs);
      r.intervalMs = intervalMs;
      return r;
    });
  let nowMs = 0;
  let cycle = 0;
  const sleeps: number[] = [];
  // a running manager has finished cycle 0 when the measurement starts
  if (opts.running !== false) view.publish(record(0));
  const deps = {
    fetchSnapshot: async () =>
      (await (await app.request("/api/partitions")).json()) as PartitionsSnapshot,
    now: () => nowMs,
    // the manager runs a cycle every intervalMs of virtual time
    sleep: async (ms: number) => {
      sleeps.push(ms);
      const end = nowMs + ms;
      while ((cycle + 1) * intervalMs <= end) view.publish(record(++cycle));
      nowMs = end;
    },
  };
  return { deps, sleeps };
}

describe("samplePartition (weir's /api/partitions, no socket)", () => {
  it("reads every cycle interval, each cycle once, leaving out the cycle finished before the window", async () => {
    const w = virtualWeir(); // cycle 0 finished before the window: not counted
    const got = await samplePartition(w.deps, "web", 1000, url);
    // 10 reads 100 ms apart (the manager's intervalMs), cycles 1..10
    expect(w.sleeps).toEqual(Array(10).fill(100));
    expect(got.samples.map((s) => s.cycle)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(got.samples[0]).toEqual({
      cycle: 1,
      windowMs: 100,
      servedPacketsPerSec: 2250,
      offeredPacketsPerSec: 3000,
    });
    expect(got.sampleEveryMs).toBe(100);
  });

  it("reads every 200 ms while no cycle has run, then at the cycle interval; skips cycles not ok", async () => {
    const w = virtualWeir({
      running: false,
      intervalMs: 50,
      record: (cycle) => {
        const r = sampleRecord(cycle, cycle * 50);
        r.intervalMs = 50;
        if (cycle % 2 === 0) {
          r.partitions[0]!.status = "stale";
          r.partitions[0]!.throughput = null;
        }
        return r;
      },
    });
    const got = await samplePartition(w.deps, "web", 400, url);
    // first read: no cycle yet → 200 ms; then the manager's 50 ms: 4 more reads to 400 ms
    expect(w.sleeps).toEqual([200, 50, 50, 50, 50]);
    // reads at 200 (cycle 4, stale), 250 (5), 300 (6, stale), 350 (7), 400 (8, stale)
    expect(got.samples.map((s) => s.cycle)).toEqual([5, 7]);
    expect(got.lastStatus).toBe("stale");
  });

  it("an unknown partition is one line naming the partitions there are", async () => {
    const w = virtualWeir();
    await expect(samplePartition(w.deps, "nope", 1000, url)).rejects.toThrow(
      `no partition "nope" at ${url} (it has: web, dns, batch)`,
    );
  });
});

describe("goalReport and formatGoal", () => {
  it("turns a window into packets per request and the config line", () => {
    const report = goalReport(
      {
        samples: [
          { cycle: 1, windowMs: 100, servedPacketsPerSec: 2200, offeredPacketsPerSec: 3000 },
          { cycle: 2, windowMs: 100, servedPacketsPerSec: 2300, offeredPacketsPerSec: 3000 },
        ],
        sampleEveryMs: 100,
        lastStatus: "ok",
      },
      { partition: "web", url, windowMs: 200, requestsPerSec: 1125, targetRequestsPerSec: 1500 },
    );
    // served (2200 + 2300) ÷ 2 = 2250 → 2 per request → 3,000 for 1,500 req/s
    expect(report).toMatchObject({
      servedPacketsPerSec: 2250,
      servedPacketsPerRequest: 2,
      goalPacketsPerSec: 3000,
      goal: "goal: { packetsPerSec: 3000 }",
    });
    expect(formatGoal(report).split("\n")).toEqual([
      `web: 2 cycles (0.2 s of traffic) read every 100 ms over 0.2 s from ${url}`,
      "  served   2,250.0 packets/s ÷ 1,125 requests/s = 2.000 packets per request",
      "  offered  3,000.0 packets/s ÷ 1,125 requests/s = 2.667 packets per request",
      "a goal is compared with served packets/s: 1,500 requests/s × 2.000 = 3,000 packets/s (rounded up)",
      "  goal: { packetsPerSec: 3000 }",
    ]);
  });
});

describe("runGoal", () => {
  const io = (deps: Omit<GoalIo, "out" | "err">) => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: { ...deps, out: (t: string) => out.push(t), err: (t: string) => err.push(t) },
    };
  };
  const opts = { requestsPerSec: 1125, targetRequestsPerSec: 1500, for: "1s", url };

  it("prints JSON with the measurement and the goal", async () => {
    const w = virtualWeir();
    const r = io(w.deps);
    expect(await runGoal("web", { ...opts, json: true }, r.io)).toBe(0);
    expect(r.err).toEqual([]);
    expect(JSON.parse(r.out.join(""))).toEqual({
      partition: "web",
      url,
      windowMs: 1000,
      sampleEveryMs: 100,
      requestsPerSec: 1125,
      targetRequestsPerSec: 1500,
      cycles: 10,
      coveredMs: 1000,
      servedPacketsPerSec: 2250,
      offeredPacketsPerSec: 3000,
      servedPacketsPerRequest: 2,
      offeredPacketsPerRequest: 3000 / 1125,
      goalPacketsPerSec: 3000,
      goal: "goal: { packetsPerSec: 3000 }",
    });
  });

  it("no traffic, unknown partition: one line on stderr and exit 1", async () => {
    const quiet = virtualWeir({
      record: (cycle) => {
        const r = sampleRecord(cycle, cycle * 100);
        r.partitions[0]!.throughput!.servedPacketsPerSec = 0;
        return r;
      },
    });
    const a = io(quiet.deps);
    expect(await runGoal("web", opts, a.io)).toBe(1);
    expect(a.err).toEqual([
      'weir goal: "web" served no packets in 10 cycles: measure while the load whose requests/s you give is running\n',
    ]);
    const b = io(virtualWeir().deps);
    expect(await runGoal("nope", opts, b.io)).toBe(1);
    expect(b.err).toEqual([`weir goal: no partition "nope" at ${url} (it has: web, dns, batch)\n`]);
    expect(b.out).toEqual([]);
  });

  it("a bad --for is a config error (field, rule, value) before anything is read", async () => {
    const r = io(virtualWeir().deps);
    await expect(runGoal("web", { ...opts, for: "0s" }, r.io)).rejects.toThrow(
      '--for must be a duration above 0 like 10s: got "0s"',
    );
    await expect(runGoal("web", { ...opts, for: "soon" }, r.io)).rejects.toThrow(
      /'--for' must be a duration like 500ms, 10s, 2m: current value is "soon"/,
    );
  });

  it("a manager that is not there: connection refused, one line, exit 1", async () => {
    // a real socket, closed again: nothing listens on its port
    const api = await serveApi(createApi({ view: new MemoryView({ specs: sampleSpecs }) }), {
      port: 0,
    });
    const gone = api.url;
    await api.close();
    const r = io({
      fetchSnapshot: () => fetchStatus(gone),
      now: () => 0,
      sleep: async () => {},
    });
    expect(await runGoal("web", { ...opts, url: gone }, r.io)).toBe(1);
    expect(r.err).toEqual([
      `weir goal: cannot reach weir at ${gone}: connection refused (is \`weir run\` up?)\n`,
    ]);
  });
});
