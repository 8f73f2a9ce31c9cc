// Root, a real testbed partition (netns, veth, cgroup v1, its packet server inside both)
// and closed-loop TCP request/response traffic from this process to it. Bounded: three
// runs of 3 s (1, 4, 16 connections), at most 200,000 requests each; the partition's
// server exits by itself after 2 min; afterAll tears down whatever a failed test left.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { openPartitionSensor } from "../../src/sensors/partition.ts";
import { defaultRoots } from "../../src/sensors/types.ts";
import { defaultStateFile } from "../../src/testbed/names.ts";
import { probeTcpServer } from "../../src/testbed/probe.ts";
import { readState } from "../../src/testbed/state.ts";
import { runTcpLoad, type TcpLoadResult } from "../../src/testbed/tcp-load.ts";
import { testbedDown, testbedUp } from "../../src/testbed/testbed.ts";
import { expectNothingLeft, snapshot } from "./leftovers.ts";

const CPU = "/sys/fs/cgroup/cpu";
const CPUACCT = "/sys/fs/cgroup/cpuacct";
const isRoot = process.getuid?.() === 0;
const prefix = `weirt-${process.pid}-tcp`;
const stateFile = defaultStateFile(prefix);

afterAll(async () => {
  if (existsSync(stateFile)) await testbedDown(stateFile).catch(() => {});
});

const cpuacctUsageNs = (rel: string) =>
  Number(readFileSync(`${CPUACCT}/${rel}/cpuacct.usage`, "utf8"));

interface Run {
  connections: number;
  r: TcpLoadResult;
  /** Host veth, as weir's sensor counts it: requests went out (offered), replies came in (served). */
  offered: number;
  served: number;
  /** The partition's cgroup CPU over the run, in cores. */
  serverCores: number;
  serverCpuMicrosPerRequest: number;
}

describe.skipIf(!isRoot)("closed-loop TCP load against a real testbed partition (root)", () => {
  it("completes requests, fills the latency histogram, scales with connections until the CPU saturates, is counted by weir's sensor, and tears down to nothing", async () => {
    const st = await testbedUp({
      prefix,
      partitions: [{ name: "web" }],
      costRounds: 300,
      groupCpuShares: 16_384,
      maxLifetimeMs: 120_000,
    });
    const p = st.partitions[0]!;
    // Half a CPU for the server: a saturation point this busy 2-core host can give it.
    writeFileSync(`${CPU}/${p.cgroup}/cpu.cfs_period_us`, "100000");
    writeFileSync(`${CPU}/${p.cgroup}/cpu.cfs_quota_us`, "50000");
    const capCores = 0.5;
    // Each connection pauses 2 ms between a reply and its next request (an interactive
    // client): one connection then leaves the server idle most of the time, and the
    // throughput of N connections is about min(N x that of one, cap / CPU per request).
    const thinkMs = 2;
    // The server listens on TCP at the UDP port's number (ready before the UDP probe answered).
    expect(await probeTcpServer(p.nsAddr, p.port, { timeoutMs: 10_000 })).toBe(true);

    // weir's sensor on the host side of the veth (the namespace side would count the same packets again)
    const sensor = openPartitionSensor(
      { cgroup: p.cgroup, interfaces: p.sensor.interfaces },
      defaultRoots,
    );
    const runs: Run[] = [];
    try {
      for (const connections of [1, 4, 16]) {
        const s0 = sensor.read(Date.now());
        const cpu0 = cpuacctUsageNs(p.cgroup);
        const r = await runTcpLoad({
          targets: [{ name: p.name, addr: p.nsAddr, port: p.port }],
          connections,
          thinkMs,
          durationMs: 3000,
          maxRequests: 200_000,
          timeoutMs: 5000,
          phases: [{ name: "steady", fromMs: 1000, toMs: 3000 }],
        });
        const s1 = sensor.read(Date.now());
        const cpuNs = cpuacctUsageNs(p.cgroup) - cpu0;
        const t = r.targets[0]!;
        const run: Run = {
          connections,
          r,
          offered: s1.offeredPackets - s0.offeredPackets,
          served: s1.servedPackets - s0.servedPackets,
          serverCores: cpuNs / 1e6 / r.generator.wallMs,
          serverCpuMicrosPerRequest: t.answered > 0 ? cpuNs / 1000 / t.answered : Number.NaN,
        };
        runs.push(run);
        console.log(
          `tcp ${connections} conn: ${t.answered} answered in ${r.sendingMs} ms = ${t.requestsPerSec}/s ` +
            `(steady ${t.phases[0]!.requestsPerSec}/s), p50 ${t.latency.p50Ms} p99 ${t.latency.p99Ms} p999 ${t.latency.p999Ms} max ${t.latency.maxMs} ms; ` +
            `server ${run.serverCores.toFixed(3)} cores, ${run.serverCpuMicrosPerRequest.toFixed(0)} us/req; ` +
            `generator ${r.generator.cpuMicrosPerRequest} us/req (${r.generator.cpuCores} cores); ` +
            `capacity ${((capCores * 1e6) / run.serverCpuMicrosPerRequest).toFixed(0)}/s; veth offered ${run.offered} served ${run.served}; timeouts ${r.totals.timedOut} errors ${r.totals.errors}`,
        );
      }
      // CPU the sensor saw matches the cgroup (same counter, read through held fds)
      const sAll = sensor.read(Date.now());
      expect(sAll.cpuUsageNs).toBeGreaterThan(0);
    } finally {
      sensor.close();
    }

    for (const { connections, r, offered, served } of runs) {
      const t = r.targets[0]!;
      expect(r.stoppedBy).toBe("duration");
      expect(t.connections).toBe(connections);
      // requests completed, none lost on a healthy partition
      expect(t.answered).toBeGreaterThan(0);
      expect(t.timedOut).toBe(0);
      expect(t.errors).toEqual({ connect: 0, reset: 0, protocol: 0 });
      expect(t.sent - t.answered).toBeLessThanOrEqual(0);
      // latency histogram filled: one value per reply, ordered percentiles
      expect(t.latency.count).toBe(t.answered);
      expect(t.latency.p50Ms!).toBeGreaterThan(0);
      expect(t.latency.p90Ms!).toBeGreaterThanOrEqual(t.latency.p50Ms!);
      expect(t.latency.p99Ms!).toBeGreaterThanOrEqual(t.latency.p90Ms!);
      // (a percentile is its bucket's upper edge: above max by up to 0.1 % at 3 digits)
      expect(t.latency.p999Ms!).toBeLessThanOrEqual(t.latency.maxMs! * 1.002 + 0.01);
      // per-second timeline adds up to the totals
      expect(t.timeline.reduce((n, s) => n + s.sent, 0)).toBe(t.sent);
      expect(t.timeline.reduce((n, s) => n + s.answered, 0)).toBe(t.answered);
      expect(t.timeline.length).toBeGreaterThanOrEqual(3);
      // weir's sensor counts the TCP packets: every request left the host (offered = host tx),
      // every reply came back (served = host rx); ACKs, handshakes and FINs add a few more,
      // at most one pure ACK per segment plus a handful per connection
      expect(offered).toBeGreaterThanOrEqual(t.sent);
      expect(served).toBeGreaterThanOrEqual(t.answered);
      expect(served).toBeLessThanOrEqual(2 * t.answered + 10 * connections + 50);
      expect(offered).toBeLessThanOrEqual(2 * t.sent + 10 * connections + 50);
      // the generator measured its own cost
      expect(r.generator.cpuMicrosPerRequest!).toBeGreaterThan(0);
    }

    const [one, four, sixteen] = runs as [Run, Run, Run];
    const rps = (x: Run) => x.r.targets[0]!.requestsPerSec;
    // The server's CPU per request is mostly the work, not the concurrency: within a factor of
    // 3 across the runs. One connection also pays a sleep and a wake-up per request, which
    // costs more where system calls are slow: 1,041 µs a request at 1 connection against 514 and
    // 651 at 4 and 16, beside a CPU hog on a 2-vCPU AMD EPYC guest (a factor of 2 failed there).
    const perReq = runs.map((x) => x.serverCpuMicrosPerRequest);
    expect(Math.max(...perReq)).toBeLessThan(3 * Math.min(...perReq));
    // Saturation is the cap: no run used much more than the half CPU it was given.
    for (const x of runs) expect(x.serverCores).toBeLessThan(capCores * 1.2);
    // The most the server can do, from what this machine measured: cap / CPU per request.
    const capacityRps = (capCores * 1e6) / Math.min(...perReq);
    for (const x of runs) expect(rps(x)).toBeLessThan(capacityRps * 1.2);
    // More connections, more throughput, until the CPU saturates: 4 connections reach at least
    // 60 % of min(4 x what one reached, the capacity at the CPU per request that run measured),
    // and 16 connections hold the plateau (no collapse: at least 70 % of their capacity; 16 x
    // one connection's rate, about 5,000/s, is far beyond it). Each run's own cost, not the
    // cheapest run's: beside a CPU hog on a 2-vCPU AMD EPYC guest the server took 494 µs a
    // request at 4 connections and 794 µs at 16 in the same test (2026-12-04), so 16 answered
    // 646/s against 4's 959/s at the same 0.5 cores.
    const ownCapacity = (x: Run) => (capCores * 1e6) / x.serverCpuMicrosPerRequest;
    expect(rps(four)).toBeGreaterThan(0.6 * Math.min(4 * rps(one), ownCapacity(four)));
    expect(rps(sixteen)).toBeGreaterThan(0.7 * ownCapacity(sixteen));
    // Unless one connection already kept the server at >= 80 % of what 16 got out of it,
    // 4 connections beat 1 by a clear margin; the server's CPU rises with the connections.
    if (one.serverCores < 0.8 * sixteen.serverCores)
      expect(rps(four)).toBeGreaterThan(1.2 * rps(one));
    expect(sixteen.serverCores).toBeGreaterThanOrEqual(
      0.8 * Math.max(one.serverCores, four.serverCores),
    );
    // Closed loop at saturation: requests queue behind each other, so the median latency
    // grows with the connections (Little: ~ connections / throughput).
    expect(sixteen.r.targets[0]!.latency.p50Ms!).toBeGreaterThan(one.r.targets[0]!.latency.p50Ms!);

    const rec = snapshot(readState(st.stateFile)!);
    const down = await testbedDown(st.stateFile);
    expect(down.failed).toEqual([]);
    expect(down.clean).toBe(true);
    expectNothingLeft(rec);
  });
});
