import { describe, expect, it } from "vitest";
import type { CounterSample } from "../core/model.ts";
import { carryCpuUsed, throughputFromSamples, withHostCongestion } from "./throughput.ts";

const sample = (over: Partial<CounterSample>): CounterSample => ({
  atMs: 0,
  offeredPackets: 0,
  servedPackets: 0,
  droppedPackets: 0,
  cpuUsageNs: 0,
  nrPeriods: 0,
  nrThrottled: 0,
  throttledNs: 0,
  ...over,
});

const prev = sample({
  atMs: 1000,
  offeredPackets: 3000,
  servedPackets: 711,
  droppedPackets: 2294,
  cpuUsageNs: 48_000_000_000,
  nrPeriods: 5120,
  nrThrottled: 312,
});

describe("throughputFromSamples", () => {
  it("rates over a 100 ms window, with the arithmetic", () => {
    const next = sample({
      atMs: 1100,
      offeredPackets: 3300, // +300 in 0.1 s = 3000/s
      servedPackets: 782, // +71 in 0.1 s = 710/s
      droppedPackets: 2523, // +229 in 0.1 s = 2290/s
      cpuUsageNs: 48_025_000_000, // +25 ms of CPU in 100 ms = 0.25 cores
      nrPeriods: 5130, // +10 periods
      nrThrottled: 316, // +4 throttled -> 0.4
    });
    const t = throughputFromSamples("web", prev, next, "host");
    expect(t.partition).toBe("web");
    expect(t.source).toBe("host");
    expect(t.windowMs).toBe(100);
    expect(t.offeredPacketsPerSec).toBeCloseTo(3000, 9);
    expect(t.servedPacketsPerSec).toBeCloseTo(710, 9);
    expect(t.droppedPacketsPerSec).toBeCloseTo(2290, 9);
    expect(t.cpuCores).toBeCloseTo(0.25, 12);
    expect(t.throttledFraction).toBeCloseTo(0.4, 12);
    // 71 served packets / 0.025 CPU-seconds = 2840 packets per CPU-second
    expect(t.rawVelocityPacketsPerCpuSec).toBeCloseTo(2840, 9);
  });

  it("bytes per second by hook when both samples count bytes; absent otherwise; a reset gives 0", () => {
    const a = { ...prev, ingressBytes: 1_000_000, egressBytes: 50_000 };
    // +92,000 bytes in 0.1 s = 920,000/s (1000 datagrams of 64 bytes + 28 of headers); +4,600 = 46,000/s
    const t = throughputFromSamples(
      "web",
      a,
      sample({ ...a, atMs: 1100, ingressBytes: 1_092_000, egressBytes: 54_600 }),
      "host",
    );
    expect(t.ingressBytesPerSec).toBeCloseTo(920_000, 6);
    expect(t.egressBytesPerSec).toBeCloseTo(46_000, 6);
    // a source without bytes: no byte rates at all (not 0)
    const none = throughputFromSamples("web", prev, sample({ ...prev, atMs: 1100 }), "host");
    expect(none).not.toHaveProperty("ingressBytesPerSec");
    expect(none).not.toHaveProperty("egressBytesPerSec");
    // the map re-made (counts back near 0): 0 for the window, never negative
    const reset = throughputFromSamples(
      "web",
      a,
      sample({ ...a, atMs: 1100, ingressBytes: 120, egressBytes: 0 }),
      "host",
    );
    expect(reset.ingressBytesPerSec).toBe(0);
    expect(reset.egressBytesPerSec).toBe(0);
  });

  it("CPU delay fraction = delay ÷ (delay + CPU used), with the arithmetic", () => {
    const p = sample({ ...prev, cpuDelayNs: 7_000_000_000 });
    // 100 ms window: +25 ms CPU used, +75 ms waiting -> 75 / (75 + 25) = 0.75
    const n = sample({
      ...p,
      atMs: 1100,
      cpuUsageNs: prev.cpuUsageNs + 25_000_000,
      cpuDelayNs: 7_075_000_000,
    });
    expect(throughputFromSamples("web", p, n, "host").cpuDelayFraction).toBeCloseTo(0.75, 12);
    // +40 ms used, +10 ms waiting -> 10 / 50 = 0.2
    const m = sample({
      ...n,
      atMs: 1200,
      cpuUsageNs: n.cpuUsageNs + 40_000_000,
      cpuDelayNs: 7_085_000_000,
    });
    expect(throughputFromSamples("web", n, m, "host").cpuDelayFraction).toBeCloseTo(0.2, 12);
    // no wait at all -> 0 (not null: 40 ms of CPU is enough to tell)
    const z = sample({ ...m, atMs: 1300, cpuUsageNs: m.cpuUsageNs + 40_000_000 });
    expect(throughputFromSamples("web", m, z, "host").cpuDelayFraction).toBe(0);
    // only waiting, no CPU -> 1
    const w = sample({ ...z, atMs: 1400, cpuDelayNs: z.cpuDelayNs! + 100_000_000 });
    expect(throughputFromSamples("web", z, w, "host").cpuDelayFraction).toBe(1);
  });

  it("CPU delay fraction is null when unknown, too small, or a counter reset", () => {
    const p = sample({ ...prev, cpuDelayNs: 5_000_000 });
    const used = prev.cpuUsageNs + 20_000_000;
    const d = (over: Partial<CounterSample>) =>
      throughputFromSamples("web", p, sample({ ...p, atMs: 1100, ...over }), "host")
        .cpuDelayFraction;
    // a sample without cpuDelayNs (source unreadable, or an agent that does not send it)
    expect(d({ cpuUsageNs: used, cpuDelayNs: undefined })).toBeNull();
    expect(
      throughputFromSamples(
        "web",
        sample({ ...prev }),
        sample({ ...prev, atMs: 1100, cpuDelayNs: 9 }),
        "host",
      ).cpuDelayFraction,
    ).toBeNull();
    // 0.4 ms used + 0.5 ms waiting = 0.9 ms < 1 ms: too little to tell
    expect(d({ cpuUsageNs: prev.cpuUsageNs + 400_000, cpuDelayNs: 5_500_000 })).toBeNull();
    // the same 0.9 ms with a 0.5 ms threshold: 0.5 / 0.9
    expect(
      throughputFromSamples(
        "web",
        p,
        sample({ ...p, atMs: 1100, cpuUsageNs: prev.cpuUsageNs + 400_000, cpuDelayNs: 5_500_000 }),
        "host",
        { minNsForCpuDelay: 500_000 },
      ).cpuDelayFraction,
    ).toBeCloseTo(5 / 9, 12);
    // the delay counter went back (sensor re-opened): null, not 0
    expect(d({ cpuUsageNs: used, cpuDelayNs: 1_000 })).toBeNull();
    // the CPU counter reset (cgroup re-created): null
    expect(d({ cpuUsageNs: 4_000_000, cpuDelayNs: 6_000_000 })).toBeNull();
    // an impossible jump (2^50 ns in 100 ms): null
    expect(d({ cpuUsageNs: used, cpuDelayNs: 2 ** 50 })).toBeNull();
    // a zero-length window
    expect(throughputFromSamples("web", p, p, "host").cpuDelayFraction).toBeNull();
  });

  it("offered is never below dropped (offered includes what was dropped)", () => {
    // a source whose offered counter missed the drops: +10 offered, +50 dropped in 1 s
    const next = sample({ ...prev, atMs: 2000, offeredPackets: 3010, droppedPackets: 2344 });
    const t = throughputFromSamples("web", prev, next, "agent");
    expect(t.offeredPacketsPerSec).toBe(50);
    expect(t.droppedPacketsPerSec).toBe(50);
  });

  it("velocity is null below 1 ms of CPU in the window (cpuacct moves in 4 ms ticks)", () => {
    const tiny = sample({
      ...prev,
      atMs: 1100,
      servedPackets: 800,
      cpuUsageNs: prev.cpuUsageNs + 999_999,
    });
    expect(throughputFromSamples("web", prev, tiny, "host").rawVelocityPacketsPerCpuSec).toBeNull();
    const oneMs = sample({ ...tiny, cpuUsageNs: prev.cpuUsageNs + 1_000_000 });
    // 89 packets / 0.001 s = 89,000
    expect(
      throughputFromSamples("web", prev, oneMs, "host").rawVelocityPacketsPerCpuSec,
    ).toBeCloseTo(89_000, 6);
    const custom = throughputFromSamples("web", prev, oneMs, "host", {
      minCpuNsForVelocity: 4_000_000,
    });
    expect(custom.rawVelocityPacketsPerCpuSec).toBeNull();
  });

  it("no periods in the window: throttled fraction 0, not NaN", () => {
    const next = sample({ ...prev, atMs: 1100 });
    const t = throughputFromSamples("web", prev, next, "host");
    expect(t.throttledFraction).toBe(0);
    expect(t.cpuCores).toBe(0);
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
  });

  it("a counter reset (interface re-created) gives 0 for the window, never negative", () => {
    const next = sample({
      ...prev,
      atMs: 1100,
      offeredPackets: 5,
      servedPackets: 3,
      droppedPackets: 0,
      cpuUsageNs: prev.cpuUsageNs + 20_000_000,
    });
    const t = throughputFromSamples("web", prev, next, "host");
    expect(t.offeredPacketsPerSec).toBe(0);
    expect(t.servedPacketsPerSec).toBe(0);
    expect(t.droppedPacketsPerSec).toBe(0);
    // the served counter reset: 0 served here is not a measurement, so no velocity
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
    expect(t.cpuCores).toBeCloseTo(0.2, 12);
  });

  it("a cgroup re-created (usage back to near 0) gives 0 cores and no velocity", () => {
    const next = sample({
      ...prev,
      atMs: 1100,
      servedPackets: 782,
      cpuUsageNs: 4_000_000,
      nrPeriods: 3,
      nrThrottled: 1,
    });
    const t = throughputFromSamples("web", prev, next, "host");
    expect(t.cpuCores).toBe(0);
    expect(t.throttledFraction).toBe(0);
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
  });

  it("a 32-bit wrap and an impossible jump give 0, not a huge rate", () => {
    const wrapPrev = sample({ atMs: 0, offeredPackets: 4_294_967_000 });
    const wrapNext = sample({ atMs: 100, offeredPackets: 200 });
    expect(throughputFromSamples("p", wrapPrev, wrapNext, "host").offeredPacketsPerSec).toBe(0);
    // 2^40 packets in 100 ms would be 1.1e13/s: above the 1e9/s ceiling, counted as 0
    const jump = sample({
      atMs: 100,
      offeredPackets: 2 ** 40,
      servedPackets: 2 ** 40,
      cpuUsageNs: 2 ** 50,
    });
    const t = throughputFromSamples("p", sample({}), jump, "host");
    expect(t.offeredPacketsPerSec).toBe(0);
    expect(t.servedPacketsPerSec).toBe(0);
    expect(t.cpuCores).toBe(0);
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
  });

  it("a window of 0 or less gives zero rates", () => {
    for (const atMs of [1000, 900]) {
      const t = throughputFromSamples(
        "web",
        prev,
        sample({ ...prev, atMs, servedPackets: 900 }),
        "sim",
      );
      expect(t.windowMs).toBe(0);
      expect(t.servedPacketsPerSec).toBe(0);
      expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
    }
  });

  it("over random walks with resets and wraps, every rate is finite, >= 0 and bounded", () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const bump = (v: number, scale = 1): number => {
      const r = rand();
      if (r < 0.02) return Math.floor(rand() * 100); // reset
      if (r < 0.03) return v + 2 ** 45; // garbage jump
      if (r < 0.04) return (v + 1000) % 2 ** 32; // 32-bit wrap
      return v + Math.floor(rand() * 1000) * scale;
    };
    const bad: string[] = [];
    let withVelocity = 0;
    let s = sample({});
    for (let i = 0; i < 5000; i++) {
      const n = sample({
        atMs: s.atMs + 1 + Math.floor(rand() * 200),
        offeredPackets: bump(s.offeredPackets),
        servedPackets: bump(s.servedPackets),
        droppedPackets: bump(s.droppedPackets),
        cpuUsageNs: bump(s.cpuUsageNs, 20_000), // up to 20 ms per step
        nrPeriods: bump(s.nrPeriods),
        nrThrottled: bump(s.nrThrottled),
      });
      const t = throughputFromSamples("p", s, n, "sim");
      const rates = [t.offeredPacketsPerSec, t.servedPacketsPerSec, t.droppedPacketsPerSec];
      if (!rates.every((v) => Number.isFinite(v) && v >= 0 && v <= 1e9)) bad.push(`rates ${rates}`);
      if (!(t.cpuCores >= 0 && t.cpuCores <= 4096)) bad.push(`cores ${t.cpuCores}`);
      if (!(t.throttledFraction >= 0 && t.throttledFraction <= 1))
        bad.push(`thr ${t.throttledFraction}`);
      const v = t.rawVelocityPacketsPerCpuSec;
      if (v !== null) {
        withVelocity++;
        if (!(Number.isFinite(v) && v >= 0)) bad.push(`velocity ${v}`);
      }
      s = n;
    }
    expect(bad).toEqual([]);
    // most windows are ordinary ones and do produce a velocity
    expect(withVelocity).toBeGreaterThan(2500);
  });
});

describe("CPU counters carried from an earlier read (cpuAtMs)", () => {
  // an idle partition's sensor read its CPU at 0 ms, then carried it at 100..900 ms
  const at0 = sample({ atMs: 0, cpuUsageNs: 5e9, nrPeriods: 10, cpuDelayNs: 7 });
  const carried = (atMs: number, served = 0) =>
    sample({ atMs, servedPackets: served, cpuUsageNs: 5e9, nrPeriods: 10, cpuAtMs: 0 });

  it("a window in which neither sample read them: CPU used 0 over a span of 0 (not measured), no velocity", () => {
    const t = throughputFromSamples("p", carried(100), carried(200), "host");
    expect(t.windowMs).toBe(100);
    expect(t.cpuCores).toBe(0);
    expect(t.cpuWindowMs).toBe(0);
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
  });

  it("the read after: CPU used over the span since the last read, not over the window", () => {
    // 1 s after the last read, 50 ms of CPU used in all: 0.05 cores, not 0.5
    const next = sample({ atMs: 1000, servedPackets: 0, cpuUsageNs: 5.05e9, nrPeriods: 10 });
    const t = throughputFromSamples("p", carried(900), next, "host");
    expect(t.windowMs).toBe(100);
    expect(t.cpuWindowMs).toBe(1000);
    expect(t.cpuCores).toBeCloseTo(0.05, 12);
  });

  it("a window that serves after a carried sample: no velocity and no CPU delay (different spans)", () => {
    const next = sample({
      atMs: 1000,
      servedPackets: 500,
      cpuUsageNs: 5.2e9,
      nrPeriods: 10,
      cpuDelayNs: 9,
    });
    const t = throughputFromSamples("p", carried(900), next, "host");
    expect(t.servedPacketsPerSec).toBe(5000);
    expect(t.cpuCores).toBeCloseTo(0.2, 12);
    expect(t.rawVelocityPacketsPerCpuSec).toBeNull();
    expect(t.cpuDelayFraction).toBeNull();
  });

  it("samples read at their own times: no cpuWindowMs, as before", () => {
    const t = throughputFromSamples("p", at0, sample({ atMs: 100, cpuUsageNs: 5.01e9 }), "host");
    expect(t.cpuWindowMs).toBeUndefined();
    expect(t.cpuCores).toBeCloseTo(0.1, 12);
  });

  it("carryCpuUsed: a window without a read shows the window before's CPU used; others are kept", () => {
    const before = throughputFromSamples(
      "p",
      at0,
      sample({ atMs: 100, cpuUsageNs: 5.03e9 }),
      "host",
    );
    const none = throughputFromSamples("p", carried(100), carried(200), "host");
    expect(carryCpuUsed(none, before)).toBe(none);
    expect(none.cpuCores).toBeCloseTo(0.3, 12);
    expect(none.cpuWindowMs).toBe(0);
    const measured = throughputFromSamples("p", at0, sample({ atMs: 100 }), "host");
    expect(carryCpuUsed(measured, before).cpuCores).toBe(0);
    const first = throughputFromSamples("p", carried(100), carried(200), "host");
    expect(carryCpuUsed(first, null).cpuCores).toBe(0);
  });
});

describe("withHostCongestion", () => {
  const agent = throughputFromSamples(
    "g1",
    sample({ atMs: 0, cpuUsageNs: 0 }),
    sample({ atMs: 1000, offeredPackets: 300, servedPackets: 280, cpuUsageNs: 500e6 }),
    "agent",
  );
  it("keeps the agent's packets and CPU used, takes the host's throttling and CPU delay", () => {
    const host = throughputFromSamples(
      "g1",
      sample({ atMs: 0, cpuUsageNs: 2e9, nrPeriods: 40, nrThrottled: 1, cpuDelayNs: 0 }),
      sample({ atMs: 1000, cpuUsageNs: 2.8e9, nrPeriods: 50, nrThrottled: 9, cpuDelayNs: 200e6 }),
      "host",
    );
    expect(withHostCongestion(agent, host)).toEqual({
      ...agent,
      cpuCores: 0.5,
      rawVelocityPacketsPerCpuSec: 560, // 280 served/s ÷ the agent's 0.5 cores
      throttledFraction: 0.8, // 8 of 10 periods
      cpuDelayFraction: 0.2, // 200 ms ÷ (200 + 800 ms of host CPU)
      congestionFrom: "host",
    });
  });
  it("an empty host window: the agent's alone", () => {
    const none = throughputFromSamples("g1", sample({ atMs: 5 }), sample({ atMs: 5 }), "host");
    expect(withHostCongestion(agent, none)).toBe(agent);
  });
});
