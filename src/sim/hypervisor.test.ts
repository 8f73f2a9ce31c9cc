import { describe, expect, it } from "vitest";
import type { Directive } from "../core/model.ts";
import { baseSliceNs, SimHypervisor, sharesFromWeight, type Workload } from "./hypervisor.ts";
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
    expect(sharesFromWeight(100)).toBe(1024);
    expect(sharesFromWeight(1)).toBe(10);
    expect(sharesFromWeight(10000)).toBe(102400);
  });
});

describe("SimCgroupActuator", () => {
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
    expect(act.restore(found).written).toEqual(["cpu.shares", "cpu.cfs_quota_us"]);
    expect(hv.capCpuMillis("web")).toBeNull();
  });

  it("writes idle before shares and a burst before a quota cut below it, as the kernel needs", () => {
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
    // Idle class: cpu.idle is written, the weight is not (the kernel refuses it while idle).
    const r3 = act.apply(dir(0, 1, { idle: true }));
    expect(r3.error).toBeUndefined();
    expect(r3.written).toEqual(["cpu.idle", "cpu.cfs_quota_us", "cpu.cfs_burst_us"]);
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
    const res = act.apply(dir(250, 100));
    expect(res.error?.code).toBe("WEIR_CGROUP_GONE");
    expect(res.error?.retryable).toBe(false);
  });
});
