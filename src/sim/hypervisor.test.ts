import { describe, expect, it } from "vitest";
import { actuatorContract } from "../actuators/contract.ts";
import { cgroupHarness } from "../actuators/contract-harness.ts";
import { v1Format } from "../cgroup/formats.ts";
import type { Directive } from "../core/model.ts";
import { Manager } from "../manager/manager.ts";
import { defaultPolicyKnobs } from "../policy/knobs.ts";
import type { Workload } from "./cgroup.ts";
import { baseSliceNs, SimHypervisor } from "./hypervisor.ts";
import { constant } from "./load.ts";
import { cfsShare, waterfill } from "./waterfill.ts";
import { SimWorld } from "./world.ts";

/** Always runnable on `threads` CPUs; remembers the CPU it got. */
const busy = (): Workload & { gotNs: number } => {
  const w = {
    gotNs: 0,
    wantNs: () => Number.POSITIVE_INFINITY,
    run(grantNs: number) {
      w.gotNs += grantNs;
    },
  };
  return w;
};

// The simulator's hypervisor passes the same contract as every registered actuator backend:
// its actuators are the engine over the v1 files, written through writeFile.
{
  const hv = new SimHypervisor({ cpus: 2 });
  const h = cgroupHarness(v1Format);
  const armed = new Map<string, number>();
  actuatorContract({
    name: "sim hypervisor (cgroup v1 semantics)",
    makeBackend: () => hv,
    names: h.names,
    freshSnapshot: h.freshSnapshot,
    periods: h.periods,
    makeTarget: (label, init) => {
      hv.createCgroup(label, null);
      if (init?.periodUsec) hv.writeFile(label, "cpu.cfs_period_us", String(init.periodUsec));
      return { partition: label, cgroup: label };
    },
    readBack: (t) => {
      const values: Record<string, string> = {};
      for (const f of v1Format.snapshotFiles) values[f] = hv.readFile(t.cgroup, f).trim();
      return h.view(values);
    },
    removeTarget: (t) => {
      if (hv.has(t.cgroup)) hv.removeCgroup(t.cgroup);
    },
    // every writeFile is counted, unchanged values included
    writeProbe: {
      arm: (t) => {
        armed.set(t.cgroup, hv.writeCount(t.cgroup));
      },
      touched: (t) => hv.writeCount(t.cgroup) !== armed.get(t.cgroup),
    },
  });
}

const MS = 1e6;
const INF = Number.POSITIVE_INFINITY;

/** A full directive with the no-manager defaults: uncapped, normal class. */
const dir = (cpuMillis: number, weight: number, extra: Partial<Directive> = {}): Directive => ({
  partition: "web",
  cpuMillis,
  weight,
  idle: false,
  capCpuMillis: INF,
  burstCpuMillis: 0,
  capReason: null,
  cpuCount: 1,
  ...extra,
});
const runMs = (hv: SimHypervisor, ms: number, tickMs = 1) => {
  for (let i = 0; i < ms / tickMs; i++) hv.tick(tickMs * MS);
};

describe("waterfill", () => {
  it("gives everyone their cap when the caps fit", () => {
    const out = [0, 0, 0];
    waterfill(10, [1, 2, 3], [1, 1, 1], out);
    expect(out).toEqual([1, 2, 3]);
  });
  it("shares by weight and hands a satisfied claimant's spare to the others", () => {
    const out = [0, 0, 0];
    // capacity 10, weights 1:1:2 -> levels 2.5, 2.5, 5; claimant 0 needs only 1,
    // so 9 is left for weights 1:2 -> 3 and 6.
    waterfill(10, [1, 100, 100], [1, 1, 2], out);
    expect(out[0]).toBeCloseTo(1);
    expect(out[1]).toBeCloseTo(3);
    expect(out[2]).toBeCloseTo(6);
  });
});

describe("SimHypervisor CFS bandwidth", () => {
  it("a 10 % quota gives about 10 % of a CPU and counts throttling", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    const w = busy();
    hv.createCgroup("a", w, 1);
    hv.writeFile("a", "cpu.cfs_quota_us", "10000"); // 10 ms per 100 ms period
    runMs(hv, 2000);
    const used = w.gotNs / (2000 * MS); // CPUs used over 2 s
    expect(used).toBeGreaterThan(0.09);
    expect(used).toBeLessThan(0.12);
    const st = hv.stats("a");
    expect(st.nrPeriods).toBeGreaterThanOrEqual(19);
    expect(st.nrThrottled).toBeGreaterThanOrEqual(18);
    // Runnable all the time but running 10 %: throttled ~90 % of 2 s.
    expect(st.throttledNs / (2000 * MS)).toBeGreaterThan(0.8);
  });

  it("rewriting the same 10 % quota every 20 ms refills the runtime and gives far more", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    const w = busy();
    hv.createCgroup("a", w, 1);
    hv.writeFile("a", "cpu.cfs_quota_us", "10000");
    for (let t = 0; t < 2000; t += 20) {
      runMs(hv, 20);
      hv.writeFile("a", "cpu.cfs_quota_us", "10000");
    }
    const used = w.gotNs / (2000 * MS);
    // 10 ms of runtime per 20 ms window = 50 % (the kernel measured 65 %, with its slack).
    expect(used).toBeGreaterThan(0.4);
    expect(hv.writeCount("a", "cpu.cfs_quota_us")).toBe(101);
  });

  it("weights 2:1 split a busy CPU 2:1", () => {
    const hv = new SimHypervisor({ cpus: 1 });
    const a = busy();
    const b = busy();
    hv.createCgroup("a", a);
    hv.createCgroup("b", b);
    hv.writeFile("a", "cpu.shares", "2048");
    hv.writeFile("b", "cpu.shares", "1024");
    runMs(hv, 900);
    expect(a.gotNs / b.gotNs).toBeCloseTo(2, 1);
    expect((a.gotNs + b.gotNs) / (900 * MS)).toBeCloseTo(1, 5);
  });

  it("a group cannot use more CPUs than it has threads, and nothing exceeds the machine", () => {
    // No wake-up wait: a's first tick would otherwise wait behind b, which could fill both CPUs.
    const hv = new SimHypervisor({ cpus: 2, wakeupWaitMaxNs: 0 });
    const a = busy();
    const b = busy();
    hv.createCgroup("a", a, 1);
    hv.createCgroup("b", b, 2);
    runMs(hv, 100);
    expect(a.gotNs / (100 * MS)).toBeCloseTo(1, 5);
    expect(b.gotNs / (100 * MS)).toBeCloseTo(1, 5);
  });

  it("a raised quota takes effect at once; a cap above the machine is no cap", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    const a = busy();
    hv.createCgroup("a", a, 2);
    hv.writeFile("a", "cpu.cfs_quota_us", "20000");
    runMs(hv, 50); // the 20 ms of runtime is spent in 10 ms on 2 threads, then throttled
    const before = a.gotNs;
    hv.writeFile("a", "cpu.cfs_quota_us", "400000");
    runMs(hv, 10);
    expect((a.gotNs - before) / (10 * MS)).toBeCloseTo(2, 5);
    expect(hv.capCpuMillis("a")).toBe(4000);
  });

  it("reads and writes like cgroupfs files and rejects what the kernel rejects", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("a", busy());
    expect(hv.readFile("a", "cpu.cfs_quota_us")).toBe("-1\n");
    expect(hv.readFile("a", "cpu.shares")).toBe("1024\n");
    expect(() => hv.writeFile("a", "cpu.cfs_quota_us", "500")).toThrow(/EINVAL/);
    expect(() => hv.readFile("nope", "cpu.stat")).toThrow(/does not exist/);
    expect(hv.readFile("a", "cpu.stat")).toMatch(
      /^nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n$/,
    );
  });
});

describe("the sim's actuators (the real engine over the v1 format)", () => {
  it("writes only values that changed, so it never triggers the refill effect by itself", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("web", busy());
    const act = hv.open({ partition: "web", cgroup: "web" });
    const found = act.snapshot();
    expect(found.values).toEqual({
      "cpu.cfs_period_us": "100000",
      "cpu.cfs_quota_us": "-1",
      "cpu.cfs_burst_us": "0",
      "cpu.idle": "0",
      "cpu.shares": "1024",
    });
    // Uncapped, weight 200 -> 2048 shares: only the shares change.
    expect(act.apply(dir(250, 200)).written).toEqual(["cpu.shares"]);
    expect(act.apply(dir(250, 200)).written).toEqual([]);
    // A cap of 250 millicores at a 100000 us period = 25000 us.
    const capped = { capCpuMillis: 250, capReason: "capped" as const };
    expect(act.apply(dir(250, 200, capped)).written).toEqual(["cpu.cfs_quota_us"]);
    expect(act.apply(dir(300, 200, { ...capped, capCpuMillis: 300 })).written).toEqual([
      "cpu.cfs_quota_us",
    ]);
    expect(hv.writeCount("web")).toBe(3);
    expect(act.restore(found).written).toEqual(["cpu.cfs_quota_us", "cpu.shares"]);
    expect(hv.capCpuMillis("web")).toBeNull();
  });

  it("writes idle before shares and a shrinking burst before the quota, as the kernel needs", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("web", busy());
    const act = hv.open({ partition: "web", cgroup: "web" });
    const found = act.snapshot();
    // Cap 400m with 300m of burst: 40000 us quota, then 30000 us burst (burst <= quota).
    const r1 = act.apply(
      dir(400, 100, { capCpuMillis: 400, burstCpuMillis: 300, capReason: "capped" }),
    );
    expect(r1.error).toBeUndefined();
    expect(r1.written).toEqual(["cpu.cfs_quota_us", "cpu.cfs_burst_us"]);
    // Cut the cap to 200m, burst 100m: 20000 < the current burst 30000, so the burst goes first.
    const r2 = act.apply(
      dir(200, 100, { capCpuMillis: 200, burstCpuMillis: 100, capReason: "capped" }),
    );
    expect(r2.error).toBeUndefined();
    expect(r2.written).toEqual(["cpu.cfs_burst_us", "cpu.cfs_quota_us"]);
    // Idle class, uncapped: the burst (now 0) shrinks, so it goes before the quota; cpu.idle is
    // written, the weight is not (the kernel refuses it while idle).
    const r3 = act.apply(dir(0, 1, { idle: true }));
    expect(r3.error).toBeUndefined();
    expect(r3.written).toEqual(["cpu.cfs_burst_us", "cpu.cfs_quota_us", "cpu.idle"]);
    expect(hv.shares("web")).toBe(3);
    // Back to normal class at weight 300: idle 0 resets shares to 1024, then 3072 is written.
    expect(act.apply(dir(600, 300)).written).toEqual(["cpu.idle", "cpu.shares"]);
    expect(hv.shares("web")).toBe(3072);
    expect(act.restore(found).written).toEqual(["cpu.shares"]);
    expect(hv.readFile("web", "cpu.idle")).toBe("0\n");
  });

  it("reports a vanished cgroup as a terminal error instead of throwing", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("web", busy());
    const act = hv.open({ partition: "web", cgroup: "web" });
    hv.removeCgroup("web");
    // like a held fd on a removed cgroup, the first write answers ENODEV
    const res = act.apply(dir(250, 200));
    expect(res.error?.code).toBe("WEIR_TARGET_GONE");
    expect(res.error?.retryable).toBe(false);
  });
});

describe("cfsShare: one tick of CFS among cgroups", () => {
  // Capacity in the same unit as the limits: 1,000 = one CPU for the whole tick.
  it("weights 2:1, both hungry, on one CPU -> 2/3 and 1/3", () => {
    const out = [0, 0];
    cfsShare(1000, [INF, INF], [2048, 1024], [false, false], out);
    // 1,000 × 2048 / 3072 = 666.67; 1,000 × 1024 / 3072 = 333.33.
    expect(out[0]).toBeCloseTo(666.667, 2);
    expect(out[1]).toBeCloseTo(333.333, 2);
  });

  it("is work-conserving: what one does not want goes to the other", () => {
    const out = [0, 0];
    // The weight-2 group wants nothing this tick: the weight-1 group gets the whole CPU.
    cfsShare(1000, [0, INF], [2048, 1024], [false, false], out);
    expect(out).toEqual([0, 1000]);
    // It wants 100: level 1,000 / 3,072 per share -> 666.7 for it, more than 100, so it gets
    // 100 and the other the remaining 900.
    cfsShare(1000, [100, INF], [2048, 1024], [false, false], out);
    expect(out[0]).toBeCloseTo(100, 6);
    expect(out[1]).toBeCloseTo(900, 6);
  });

  it("an idle-class hog gets only what the normal class leaves, whatever its weight", () => {
    const out = [0, 0, 0];
    // Normal groups want 300 and 200 of 2 CPUs (2,000): the idle hog gets 2,000 - 500 = 1,500.
    cfsShare(2000, [300, 200, INF], [1024, 1024, 262_144], [false, false, true], out);
    expect(out[0]).toBeCloseTo(300, 6);
    expect(out[1]).toBeCloseTo(200, 6);
    expect(out[2]).toBeCloseTo(1500, 6);
    // A hungry normal group takes both CPUs: nothing is left for the hog.
    cfsShare(2000, [INF, 200, INF], [1024, 1024, 262_144], [false, false, true], out);
    expect(out[0]).toBeCloseTo(1800, 6);
    expect(out[2]).toBe(0);
  });

  it("idle-class groups split the leftover equally (the kernel gives each weight 3)", () => {
    const out = [0, 0, 0];
    // 1,000 - 400 = 600 left, two idle hogs -> 300 each, their cpu.shares notwithstanding.
    cfsShare(1000, [400, INF, INF], [1024, 2, 8192], [false, true, true], out);
    expect(out).toEqual([400, 300, 300]);
  });
});

describe("SimHypervisor: caps, burst and the idle class", () => {
  it("a cap holds even when the rest of the machine is idle; an uncapped neighbour takes the rest", () => {
    const hv = new SimHypervisor({ cpus: 1, wakeupWaitMaxNs: 0 });
    const a = busy();
    const b = busy();
    hv.createCgroup("a", a);
    hv.createCgroup("b", b);
    hv.writeFile("a", "cpu.shares", "8192"); // 8x b's weight, but capped
    hv.writeFile("a", "cpu.cfs_quota_us", "25000"); // 250m
    runMs(hv, 1000);
    // 10 periods × 25 ms = 250 ms for a; b gets the other 750 ms (work-conserving).
    expect(a.gotNs / MS).toBeCloseTo(250, 3);
    expect(b.gotNs / MS).toBeCloseTo(750, 3);
  });

  it("burst: after idling, a capped group exceeds its cap by at most its bank, then falls back", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    let on = false;
    let got = 0;
    const periodGot: number[] = [];
    const w: Workload = {
      wantNs: () => (on ? INF : 0),
      run: (g) => {
        got += g;
      },
    };
    hv.createCgroup("a", w, 2);
    hv.writeFile("a", "cpu.cfs_quota_us", "20000"); // 200m: 20 ms per 100 ms
    hv.writeFile("a", "cpu.cfs_burst_us", "15000"); // may bank 15 ms more
    expect(() => hv.writeFile("a", "cpu.cfs_burst_us", "30000")).toThrow(/EINVAL/);
    expect(() => hv.writeFile("a", "cpu.cfs_quota_us", "10000")).toThrow(/EINVAL/);
    runMs(hv, 300); // idle for 3 periods: the bank fills to quota + burst = 35 ms
    on = true;
    for (let p = 0; p < 3; p++) {
      const before = got;
      runMs(hv, 100);
      periodGot.push((got - before) / MS);
    }
    // First busy period: 35 ms (20 ms quota + 15 ms banked), never more; then 20 ms a period.
    expect(periodGot[0]).toBeCloseTo(35, 6);
    expect(periodGot[1]).toBeCloseTo(20, 6);
    expect(periodGot[2]).toBeCloseTo(20, 6);
    const st = hv.stats("a");
    expect(st.nrBursts).toBe(1);
    expect(st.burstNs / MS).toBeCloseTo(15, 6);
    expect(hv.readFile("a", "cpu.stat")).toMatch(/nr_bursts 1\nburst_time 15000000\n$/);
  });

  it("cpu.idle: shares read 3 and cannot be written while idle; clearing it restores 1024", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("hog", busy());
    hv.writeFile("hog", "cpu.shares", "4096");
    hv.writeFile("hog", "cpu.idle", "1");
    expect(hv.readFile("hog", "cpu.shares")).toBe("3\n");
    expect(() => hv.writeFile("hog", "cpu.shares", "2048")).toThrow(/idle.*EINVAL/);
    hv.writeFile("hog", "cpu.idle", "0");
    expect(hv.readFile("hog", "cpu.shares")).toBe("1024\n");
    expect(() => hv.writeFile("hog", "cpu.idle", "2")).toThrow(/EINVAL/);
  });
});

describe("the wake-up wait behind a same-class hog", () => {
  /** A light server (700 packets/s, 0.2 CPU) next to a 2-thread hog; p99 latency and CPU delay. */
  const run = (hog: "none" | "normal" | "idle") => {
    const world = new SimWorld({ cpus: 2, seed: 5 });
    const web = world.addNetwork("web", { load: constant(700), ownLatency: true });
    if (hog !== "none") {
      world.addBatch("hog");
      if (hog === "idle") world.hypervisor.writeFile("hog", "cpu.idle", "1");
    }
    world.advance(20_000);
    const st = world.hypervisor.stats("web");
    return {
      served: web.counters.servedPackets / web.counters.offeredPackets,
      p99Ms: web.latencyUs!.getValueAtPercentile(99) / 1000,
      delayMs: st.cpuDelayNs / 1e6,
    };
  };

  it("costs a light server a little latency next to a normal-class hog, none next to an idle-class one", () => {
    const alone = run("none");
    const normal = run("normal");
    const idle = run("idle");
    for (const r of [alone, normal, idle]) expect(r.served).toBeGreaterThan(0.999);
    // Alone and beside an idle-class hog: the same arrivals (same seed), no wait at all.
    expect(idle.p99Ms).toBe(alone.p99Ms);
    expect(idle.delayMs).toBe(alone.delayMs);
    // Beside a normal-class hog it waits at most one base slice (1.5 ms) per wake-up, served at
    // 1 ms ticks: p99 rises, by no more than two ticks, and the delay counter shows the waits.
    expect(baseSliceNs(2)).toBe(1_500_000);
    expect(normal.p99Ms).toBeGreaterThan(alone.p99Ms);
    expect(normal.p99Ms).toBeLessThanOrEqual(alone.p99Ms + 2);
    expect(normal.delayMs).toBeGreaterThan(alone.delayMs);
  });
});

describe("the manager over the simulator's hypervisor: Desired -> Applied", () => {
  it("applies within the cycle: desired (as the v1 files express it) equals applied, every cycle", () => {
    const hv = new SimHypervisor({ cpus: 2 });
    hv.createCgroup("weir/a", null);
    let t = 0;
    // weight 333 is written as 3410 shares and read back as weight 333; a 5m cap as the 10m floor
    const plan: Array<[number, number]> = [
      [250, 333],
      [250, 333],
      [5, 333], // below the 10m quota floor at a 100 ms period
      [Number.POSITIVE_INFINITY, 50],
    ];
    let step = 0;
    const m = new Manager({
      now: () => t,
      intervalMs: 100,
      knobs: defaultPolicyKnobs(2000),
      throughput: () => {
        throw new Error("no sensor, no throughput");
      },
      policy: {
        name: "plan-test",
        initialState: () => ({ partitions: {} }),
        step: (_input, state) => {
          const [cap, weight] = plan[step]!;
          const d: Directive = {
            partition: "a",
            cpuMillis: 250,
            weight,
            idle: false,
            capCpuMillis: cap,
            burstCpuMillis: 0,
            capReason: Number.isFinite(cap) ? "capped" : null,
            cpuCount: 1,
          };
          return { directives: [d], decisions: [], state };
        },
      },
      partitions: [
        {
          spec: {
            id: "a",
            minCpuMillis: 0,
            maxCpuMillis: 2000,
            weight: 100,
            importance: 3,
            kind: "network",
          },
          source: "host",
          openActuator: () => hv.open({ partition: "a", cgroup: "weir/a" }),
        },
      ],
    });
    const seen = [];
    for (step = 0; step < plan.length; step++, t += 100) {
      m.runCycle();
      const a = m.allocations().a!;
      expect(a.applied).toEqual(a.desired);
      seen.push([a.applied.capCpuMillis, a.applied.weight, a.inForce, a.differsSinceMs]);
    }
    expect(seen).toEqual([
      [250, 333, true, null],
      [250, 333, true, null],
      [10, 333, true, null],
      [Number.POSITIVE_INFINITY, 50, true, null],
    ]);
    expect([hv.capCpuMillis("weir/a"), hv.shares("weir/a")]).toEqual([null, 512]);
    // cap 250, weight 333, cap 10 (the floor), no cap + weight 50: one write each
    expect(hv.writeCount("weir/a")).toBe(5);
  });
});
