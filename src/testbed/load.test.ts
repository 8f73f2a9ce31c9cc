import dgram from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadResult, runLoad } from "./load.ts";
import { pooledLatency } from "./load-stats.ts";
import { probeServer } from "./probe.ts";
import { type PacketServer, startPacketServer } from "./server.ts";

// A cheap server in this process on loopback: these tests check counting and bounds,
// not speed (speed and CPU limits are measured in the e2e tests and bench/).
let server: PacketServer;
let silent: dgram.Socket;
let silentPort: number;

beforeAll(async () => {
  server = await startPacketServer({
    port: 0,
    host: "127.0.0.1",
    costRounds: 1,
    maxLifetimeMs: 120_000,
  });
  silent = dgram.createSocket("udp4");
  await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
  silentPort = silent.address().port;
});
afterAll(async () => {
  await server.close();
  silent.close();
});

const consistent = (r: LoadResult) => {
  for (const t of r.targets) {
    expect(t.answered + t.lost).toBe(t.sent);
    expect(t.timeline.reduce((a, s) => a + s.sent, 0)).toBe(t.sent);
    expect(t.timeline.reduce((a, s) => a + s.answered, 0)).toBe(t.answered);
    expect(t.latency.count).toBe(t.answered);
  }
  expect(r.totals.sent).toBe(r.targets.reduce((a, t) => a + t.sent, 0));
};

describe("runLoad (loopback)", () => {
  it("sends at the scheduled rate, gets answers, and accounts for every packet", async () => {
    const ticks: number[] = [];
    const r = await runLoad({
      targets: [{ name: "a", addr: "127.0.0.1", port: server.port }],
      schedule: { kind: "constant", pps: 200 },
      durationMs: 1500,
      maxPackets: 10_000,
      timeoutMs: 3000,
      reportIntervalMs: 500,
      onTick: (p) => ticks.push(p.targets[0]!.sent),
    });
    const t = r.targets[0]!;
    expect(r.stoppedBy).toBe("duration");
    // 200 pps x 1.5 s = 300 packets at most; stalls longer than 100 ms are not made up
    expect(t.sent).toBeLessThanOrEqual(300);
    // what the schedule asked for over the time sending went on (~1.5 s)
    expect(t.scheduled).toBeGreaterThanOrEqual(295);
    expect(t.scheduled).toBeLessThanOrEqual(300);
    // scheduled is floor(∫ rate) up to when sending stopped; the last batch may round up by one
    expect(t.sent).toBeLessThanOrEqual(t.scheduled + 1);
    expect(t.sent).toBeGreaterThanOrEqual(150);
    expect(t.answered).toBeGreaterThan(0);
    expect(t.latency.p50Ms).not.toBeNull();
    expect(t.timeline[0]).toMatchObject({ second: 0, spanMs: 1000, targetPps: 200 });
    expect(t.timeline[1]).toMatchObject({ second: 1, targetPps: 200 });
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    expect(ticks).toEqual([...ticks].sort((x, y) => x - y));
    expect(r.generator.cpuMicrosPer1000Packets).toBeGreaterThan(0);
    consistent(r);
  });

  it("stops at maxPackets exactly", async () => {
    const r = await runLoad({
      targets: [{ name: "a", addr: "127.0.0.1", port: server.port }],
      schedule: { kind: "constant", pps: 2000 },
      durationMs: 10_000,
      maxPackets: 50,
    });
    expect([r.stoppedBy, r.totals.sent]).toEqual(["maxPackets", 50]);
    consistent(r);
  });

  it("counts everything as lost when nobody answers, and waits only the timeout", async () => {
    const t0 = Date.now();
    const r = await runLoad({
      targets: [{ name: "silent", addr: "127.0.0.1", port: silentPort }],
      schedule: { kind: "constant", pps: 100 },
      durationMs: 300,
      maxPackets: 1000,
      timeoutMs: 200,
    });
    const t = r.targets[0]!;
    expect(t.sent).toBeGreaterThan(0);
    expect([t.answered, t.lost]).toEqual([0, t.sent]);
    expect(t.servedRatio).toBe(0);
    expect(t.latency.p99Ms).toBeNull();
    expect(Date.now() - t0).toBeLessThan(10_000);
    consistent(r);
  });

  it("stops on its signal", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await runLoad({
      targets: [{ name: "a", addr: "127.0.0.1", port: server.port }],
      schedule: { kind: "constant", pps: 100 },
      durationMs: 60_000,
      maxPackets: 100_000,
      signal: ac.signal,
    });
    expect(r.stoppedBy).toBe("signal");
    expect(r.sendingMs).toBeLessThan(30_000);
    consistent(r);
  });

  it("follows per-target schedules and sums phases by send time", async () => {
    const r = await runLoad({
      targets: [
        {
          name: "stepper",
          addr: "127.0.0.1",
          port: server.port,
          schedule: { kind: "step", fromPps: 50, toPps: 400, atMs: 500 },
        },
        {
          name: "idle",
          addr: "127.0.0.1",
          port: server.port,
          schedule: { kind: "constant", pps: 0 },
        },
      ],
      durationMs: 1000,
      maxPackets: 10_000,
      timeoutMs: 3000,
      phases: [
        { name: "before", fromMs: 0, toMs: 500 },
        // the last batch may go out a few ms after durationMs: by send time it is still "after"
        { name: "after", fromMs: 500, toMs: 5000, keepHistogram: true },
      ],
    });
    const [stepper, idle] = r.targets;
    // expected 50 x 0.5 = 25 before, 400 x 0.5 = 200 after
    const [before, after] = stepper!.phases;
    expect(before!.sent).toBeLessThanOrEqual(26);
    expect(after!.sent).toBeGreaterThan(before!.sent * 2);
    expect(before!.sent + after!.sent).toBe(stepper!.sent);
    // the phase that asked for its histogram has it: the same latencies as its summary
    expect(before!.histogramB64).toBeUndefined();
    const kept = pooledLatency([after!.histogramB64!]);
    expect(kept.count).toBe(after!.latency.count);
    expect(kept.p99Ms).toBe(after!.latency.p99Ms);
    expect(idle!.sent).toBe(0);
    expect(idle!.servedRatio).toBeNull();
    consistent(r);
  });

  it("staggers the targets' batches when asked, and keeps them aligned by default", async () => {
    // Two silent receivers note when each batch arrives; a batch's packets arrive together.
    const gapsMs = async (targetPhase?: "aligned" | "staggered") => {
      const socks = [dgram.createSocket("udp4"), dgram.createSocket("udp4")];
      const arrivals: number[][] = [[], []];
      await Promise.all(socks.map((s) => new Promise<void>((r) => s.bind(0, "127.0.0.1", r))));
      socks.forEach((s, i) => {
        s.on("message", () => arrivals[i]!.push(performance.now()));
      });
      const r = await runLoad({
        targets: socks.map((s, i) => ({
          name: `t${i}`,
          addr: "127.0.0.1",
          port: s.address().port,
        })),
        schedule: { kind: "constant", pps: 200 },
        durationMs: 2000,
        maxPackets: 10_000,
        timeoutMs: 50,
        // A long tick: on a busy machine an event loop that wakes 10 ms late fires both
        // targets' timers together, which would hide a short offset; and one target's timer
        // firing 40 ms later than the other's (seen at a load of 7.9 on 2 CPUs) must not
        // push the offset out of its bounds.
        tickMs: 200,
        // No credit cut at a late tick: the accounting below expects the whole schedule.
        maxBurstMs: 1000,
        ...(targetPhase ? { targetPhase } : {}),
      });
      for (const s of socks) s.close();
      // Every target gets its whole schedule, the late-phase one too (credited up to the end).
      for (const t of r.targets) {
        expect(t.sent).toBeGreaterThanOrEqual(t.scheduled - 1);
        expect(t.sent).toBeLessThanOrEqual(t.scheduled + 1);
      }
      consistent(r);
      // For each of t1's arrivals, how long after t0's latest arrival it came.
      const gaps = arrivals[1]!.flatMap((at) => {
        const before = arrivals[0]!.filter((x) => x <= at + 0.5);
        return before.length > 0 ? [at - before[before.length - 1]!] : [];
      });
      return gaps.sort((x, y) => x - y)[Math.floor(gaps.length / 2)]!;
    };
    // Aligned: both batches go out on one tick (gap ~0). Staggered: t1's go out half a tick
    // (100 ms) after t0's. Generous bounds: timers on a busy machine fire late.
    expect(await gapsMs()).toBeLessThan(10);
    const staggered = await gapsMs("staggered");
    expect(staggered).toBeGreaterThan(50);
    expect(staggered).toBeLessThan(190);
    await expect(
      runLoad({
        targets: [{ name: "a", addr: "127.0.0.1", port: server.port }],
        schedule: { kind: "constant", pps: 1 },
        durationMs: 100,
        maxPackets: 1,
        targetPhase: "sideways" as "aligned",
      }),
    ).rejects.toThrow(/'targetPhase'/);
  });

  it("rejects unbounded or empty runs", async () => {
    const target = { name: "a", addr: "127.0.0.1", port: server.port };
    const schedule = { kind: "constant" as const, pps: 1 };
    await expect(
      runLoad({ targets: [target], schedule, durationMs: 1000, maxPackets: 0 }),
    ).rejects.toThrow(/'maxPackets'/);
    await expect(
      runLoad({ targets: [target], schedule, durationMs: Number.POSITIVE_INFINITY, maxPackets: 1 }),
    ).rejects.toThrow(/'durationMs'/);
    await expect(
      runLoad({ targets: [], schedule, durationMs: 1000, maxPackets: 1 }),
    ).rejects.toThrow(/'targets'/);
    await expect(runLoad({ targets: [target], durationMs: 1000, maxPackets: 1 })).rejects.toThrow(
      /schedule/,
    );
    // a tick the timers cannot keep, or longer than the backlog sent at once
    for (const tickMs of [0, -5, 0.5, 101])
      await expect(
        runLoad({ targets: [target], schedule, durationMs: 1000, maxPackets: 1, tickMs }),
      ).rejects.toThrow(/'tickMs' must be from 1 to 100 \(maxBurstMs\)/);
  });

  it("probeServer tells a live server from a silent port", async () => {
    expect(await probeServer("127.0.0.1", server.port, { timeoutMs: 3000 })).toBe(true);
    expect(await probeServer("127.0.0.1", silentPort, { timeoutMs: 300 })).toBe(false);
  });
});
