import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pooledLatency } from "./load-stats.ts";
import { TcpTargetAccount } from "./tcp-account.ts";
import { runTcpLoad } from "./tcp-load.ts";
import { startTcpServer, type TcpServer } from "./tcp-server.ts";

const servers: TcpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("TcpTargetAccount (made-up times)", () => {
  it("counts requests by send time, replies and latency by arrival time, phases by send time", () => {
    const a = new TcpTargetAccount([
      { name: "early", fromMs: 0, toMs: 1000 },
      { name: "late", fromMs: 1000, toMs: 2500 },
    ]);
    // second 0: 3 sent; two answered in second 0 (1 ms, 3 ms), one answered in second 1 (5 ms)
    a.onSent(100);
    a.onReply(100, 101);
    a.onSent(500);
    a.onReply(500, 503);
    a.onSent(998);
    a.onReply(998, 1003);
    // second 1: 2 sent; one answered (10 ms), one timed out (noticed at 2400 ms)
    a.onSent(1200);
    a.onReply(1200, 1210);
    a.onSent(1300);
    a.onTimeout(1300, 2400);
    // second 2 (sending ends at 2500): 1 sent, answered in the drain at 2600 ms (40 ms)
    a.onSent(2560 - 100);
    a.onReply(2460, 2500 + 100);
    expect(a.takeInterval()).toEqual({ sent: 6, answered: 5, p99Ms: expect.any(Number) });
    expect(a.takeInterval()).toEqual({ sent: 0, answered: 0, p99Ms: null });
    const r = a.result(2500);
    expect([r.sent, r.answered, r.lost, r.timedOut]).toEqual([6, 5, 1, 1]);
    expect(r.servedRatio).toBeCloseTo(5 / 6);
    expect(r.requestsPerSec).toBe(2); // 5 answered / 2.5 s
    expect(r.latency.count).toBe(5);
    expect(r.latency.p50Ms).toBeCloseTo(5, 1);
    expect(r.latency.maxMs).toBeCloseTo(140, 0);
    expect(r.timeline.map((s) => [s.second, s.spanMs, s.sent, s.answered, s.timedOut])).toEqual([
      [0, 1000, 3, 2, 0],
      [1, 1000, 2, 2, 0],
      [2, 500, 1, 1, 1],
    ]);
    expect(r.timeline[0]!.p99Ms).toBeCloseTo(3, 1);
    expect(r.timeline[1]!.p99Ms).toBeCloseTo(10, 1);
    expect(r.phases.map((p) => [p.name, p.sent, p.answered, p.lost, p.timedOut])).toEqual([
      ["early", 3, 3, 0, 0],
      ["late", 3, 2, 1, 1],
    ]);
    expect(r.phases[0]!.requestsPerSec).toBe(3);
    expect(r.phases[1]!.requestsPerSec).toBeCloseTo(2 / 1.5, 1);
    // no phase asked for its histogram
    expect(r.phases.some((p) => "histogramB64" in p)).toBe(false);
  });

  it("hands back a phase's latency histogram when the phase asks for it", () => {
    const a = new TcpTargetAccount([
      { name: "kept", fromMs: 0, toMs: 1000, keepHistogram: true },
      { name: "summary only", fromMs: 0, toMs: 1000 },
    ]);
    a.onSent(100);
    a.onReply(100, 103);
    a.onSent(200);
    a.onReply(200, 210);
    const r = a.result(1000);
    const kept = pooledLatency([r.phases[0]!.histogramB64!]);
    expect(kept.count).toBe(2);
    expect(kept.maxMs).toBeCloseTo(10, 1);
    expect(kept.p50Ms).toBeCloseTo(3, 1);
    expect(r.phases[1]!.histogramB64).toBeUndefined();
  });

  it("replies after sending stopped fold into the last second; finalised seconds stay as they were", () => {
    const a = new TcpTargetAccount();
    a.onSent(10);
    a.onReply(10, 20);
    a.onSent(1500);
    a.finalizeBefore(1600); // second 0 is final
    a.onReply(1500, 3700); // drain, two seconds after sending ended at 1800
    const r = a.result(1800);
    expect(r.timeline.map((s) => [s.second, s.spanMs, s.sent, s.answered])).toEqual([
      [0, 1000, 1, 1],
      [1, 800, 1, 1],
    ]);
    // 2-digit histograms per second: within 1 %
    expect(Math.abs(r.timeline[1]!.p99Ms! - 2200)).toBeLessThan(25);
  });
});

describe("runTcpLoad (loopback server)", () => {
  it("closed loop: one request in flight per connection, bounded by maxRequests, matched by the server", async () => {
    const s = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 50,
      maxLifetimeMs: 30_000,
    });
    servers.push(s);
    const ticks: number[] = [];
    const r = await runTcpLoad({
      targets: [{ name: "a", addr: "127.0.0.1", port: s.port }],
      connections: 3,
      durationMs: 10_000,
      maxRequests: 600,
      reportIntervalMs: 50,
      onTick: (p) => ticks.push(p.targets[0]!.sent),
      phases: [{ name: "all", fromMs: 0, toMs: 10_000 }],
    });
    expect(r.stoppedBy).toBe("maxRequests");
    expect(r.totals.sent).toBe(600);
    expect(r.totals.answered).toBe(600);
    expect([r.totals.lost, r.totals.timedOut, r.totals.errors]).toEqual([0, 0, 0]);
    expect(s.stats().served).toBe(600);
    expect(s.stats().accepted).toBe(3);
    const t = r.targets[0]!;
    expect(t.connections).toBe(3);
    expect(t.latency.count).toBe(600);
    expect(t.latency.p50Ms).toBeGreaterThan(0);
    expect(t.latency.p99Ms!).toBeGreaterThanOrEqual(t.latency.p50Ms!);
    // percentiles come from a histogram (3 significant digits: within 0.1 % of a recorded value)
    expect(t.latency.maxMs!).toBeGreaterThanOrEqual(t.latency.p999Ms! * 0.998);
    expect(t.timeline.reduce((n, x) => n + x.sent, 0)).toBe(600);
    expect(t.timeline.reduce((n, x) => n + x.answered, 0)).toBe(600);
    expect(t.phases[0]).toMatchObject({ sent: 600, answered: 600, lost: 0 });
    expect(ticks.length).toBeGreaterThan(0);
    expect(r.generator.cpuMicrosPerRequest).toBeGreaterThan(0);
    expect(r.totals.requestsPerSec).toBeGreaterThan(0);
  });

  it("think time slows a connection: about (1000 / thinkMs) requests per second at most", async () => {
    const s = await startTcpServer({
      port: 0,
      host: "127.0.0.1",
      costRounds: 1,
      maxLifetimeMs: 30_000,
    });
    servers.push(s);
    const r = await runTcpLoad({
      targets: [{ name: "a", addr: "127.0.0.1", port: s.port, connections: 2 }],
      thinkMs: 50,
      durationMs: 1000,
      maxRequests: 10_000,
    });
    expect(r.stoppedBy).toBe("duration");
    // 2 connections, one request per >= 50 ms each over the time sending really went on (a
    // busy host fires the 1 s timer late: 44 requests were sent once), timers allowed to fire
    // 1 ms early: <= 2 * (sendingMs / 49 + 1)
    expect(r.totals.sent).toBeLessThanOrEqual(2 * (r.sendingMs / 49 + 1));
    expect(r.totals.sent).toBeGreaterThanOrEqual(4);
    expect(r.totals.answered).toBe(r.totals.sent);
  });

  it("a server that never answers: requests time out, connections re-open, the run still ends", async () => {
    const mute = net.createServer((sock) => sock.on("error", () => {}));
    await new Promise<void>((res) => mute.listen(0, "127.0.0.1", () => res()));
    const port = (mute.address() as net.AddressInfo).port;
    try {
      const r = await runTcpLoad({
        targets: [{ name: "mute", addr: "127.0.0.1", port }],
        connections: 2,
        durationMs: 700,
        maxRequests: 100,
        timeoutMs: 200,
      });
      expect(r.totals.answered).toBe(0);
      expect(r.totals.timedOut).toBeGreaterThanOrEqual(2);
      expect(r.totals.timedOut).toBe(r.totals.sent);
      expect(r.totals.reconnects).toBeGreaterThanOrEqual(2);
      expect(r.targets[0]!.latency.p99Ms).toBeNull();
    } finally {
      mute.close();
    }
  });

  it("refuses bad options and unreachable targets with clear errors", async () => {
    const base = {
      targets: [{ name: "a", addr: "127.0.0.1", port: 1 }],
      durationMs: 100,
      maxRequests: 1,
    };
    await expect(runTcpLoad({ ...base, connections: 0 })).rejects.toThrow(
      "'connections' must be an integer within 1..1024: current value is 0",
    );
    await expect(runTcpLoad({ ...base, maxRequests: 0 })).rejects.toThrow(
      /'maxRequests' must be a positive integer/,
    );
    await expect(runTcpLoad({ ...base, thinkMs: -1 })).rejects.toThrow(
      /'thinkMs' must be within 0..60000/,
    );
    const closed = net.createServer();
    await new Promise<void>((res) => closed.listen(0, "127.0.0.1", () => res()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((res) => closed.close(res));
    await expect(
      runTcpLoad({ ...base, targets: [{ name: "a", addr: "127.0.0.1", port }] }),
    ).rejects.toThrow(/cannot open the TCP connections: .*ECONNREFUSED/);
  });
});
