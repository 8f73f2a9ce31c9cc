import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, type WeirError } from "../core/errors.ts";
import { idleCpuReadPhaseMs, openPartitionSensor } from "./partition.ts";
import type { Roots, SensorSpec } from "./types.ts";

const FIX = path.join(import.meta.dirname, "fixtures");
const roots = (cgroupTree: "v1" | "v2" | "hybrid", base = FIX): Roots => ({
  sysfs: path.join(base, "sys"),
  procfs: path.join(base, "proc"),
  cgroupfs: path.join(base, cgroupTree, "cgroup"),
});
const veth = (name: string) => ({ name, offered: "tx", served: "rx" }) as const;

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function copyFixtures(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "weir-part-"));
  tmpDirs.push(d);
  fs.cpSync(FIX, d, { recursive: true });
  return d;
}
const openFds = (): number => fs.readdirSync("/proc/self/fd").length;

describe("openPartitionSensor on fixture trees", () => {
  it("v1 cgroup, two host-side veths and a pid for socket drops", () => {
    const spec: SensorSpec = {
      cgroup: "weir/web",
      interfaces: [veth("vweb0"), veth("vweb1")],
      pid: 4242,
    };
    const s = openPartitionSensor(spec, roots("v1"));
    expect(s.read(1000)).toEqual({
      atMs: 1000,
      offeredPackets: 3000 + 4 + (250 + 1), // tx + tx_dropped of each veth
      servedPackets: 711 + 100, // rx of each veth
      droppedPackets: 4 + 1 + 2289, // tx_dropped of each + Udp InErrors (not + RcvbufErrors: inside it)
      cpuUsageNs: 48213377812,
      nrPeriods: 5120,
      nrThrottled: 312,
      throttledNs: 18734562210,
      cpuDelayNs: 0, // counted from the sensor's opening (schedstat of tasks 4242, 4243)
    });
    s.close();
  });

  it("v2 cgroup and only a pid: the namespace's interfaces but lo, offered = rx", () => {
    const s = openPartitionSensor({ cgroup: "weir/web", interfaces: [], pid: 4242 }, roots("v2"));
    expect(s.read(5)).toEqual({
      atMs: 5,
      offeredPackets: 3000 + 4 + 7072, // veth-web-ns rx + drop, eth1 rx
      servedPackets: 711 + 3941,
      droppedPackets: 4 + 2289,
      cpuUsageNs: 8330232000,
      nrPeriods: 120,
      nrThrottled: 37,
      throttledNs: 1542211000,
      cpuDelayNs: 0, // counted from the sensor's opening (cpu.pressure)
    });
    s.close();
  });

  it("host interfaces plus explicit namespace interfaces count both", () => {
    const s = openPartitionSensor(
      {
        cgroup: "weir/web",
        interfaces: [veth("vweb1")],
        pid: 4242,
        netnsInterfaces: [{ name: "eth1", offered: "rx", served: "tx" }],
      },
      roots("v1"),
    );
    const r = s.read(0);
    expect(r.offeredPackets).toBe(251 + 7072);
    expect(r.servedPackets).toBe(100 + 3941);
    expect(r.droppedPackets).toBe(1 + 0 + 2289);
    s.close();
  });

  it("hybrid host (v1 cpu + cpuacct, cgroup2 at unified/ without cpu): the v1 counters", () => {
    const s = openPartitionSensor(
      { cgroup: "weir/web", interfaces: [veth("vweb0")] },
      roots("hybrid"),
    );
    const r = s.read(0);
    expect(r.cpuUsageNs).toBe(48213377812);
    expect([r.nrPeriods, r.nrThrottled, r.throttledNs]).toEqual([5120, 312, 18734562210]);
    expect(r.offeredPackets).toBe(3004);
    s.close();
  });

  it("a batch partition (no interfaces, no pid) reads CPU only", () => {
    const s = openPartitionSensor({ cgroup: "weir/web", interfaces: [] }, roots("v1"));
    const r = s.read(0);
    expect([r.offeredPackets, r.servedPackets, r.droppedPackets]).toEqual([0, 0, 0]);
    expect(r.cpuUsageNs).toBe(48213377812);
    s.close();
  });

  it("reads again on the same descriptors and sees new values", () => {
    const base = copyFixtures();
    const s = openPartitionSensor(
      { cgroup: "weir/web", interfaces: [veth("vweb0")], pid: 4242 },
      roots("v1", base),
    );
    const a = s.read(0);
    fs.writeFileSync(path.join(base, "sys/class/net/vweb0/statistics/tx_packets"), "3300\n");
    fs.writeFileSync(path.join(base, "v1/cgroup/cpuacct/weir/web/cpuacct.usage"), "48238377812\n");
    // task 4243 waited 7.5 ms more for a CPU: run_delay 2204151992 -> 2211651992
    fs.writeFileSync(path.join(base, "proc/4243/schedstat"), "96155070842 2211651992 40240\n");
    const b = s.read(100);
    expect(b.offeredPackets - a.offeredPackets).toBe(300);
    expect(b.cpuUsageNs - a.cpuUsageNs).toBe(25_000_000);
    expect(b.cpuDelayNs! - a.cpuDelayNs!).toBe(7_500_000);
    s.close();
  });

  it.each([
    ["cgroup", { cgroup: "weir/gone", interfaces: [veth("vweb0")] }, ErrorCodes.CGROUP_GONE, false],
    [
      "interface",
      { cgroup: "weir/web", interfaces: [veth("vweb0"), veth("vgone")] },
      ErrorCodes.INTERFACE_GONE,
      true,
    ],
    [
      "pid",
      { cgroup: "weir/web", interfaces: [veth("vweb0")], pid: 999999 },
      ErrorCodes.PROCESS_GONE,
      false,
    ],
  ] as Array<[string, SensorSpec, string, boolean]>)(
    "a missing %s fails at open with its code and leaks no descriptor",
    (_what, spec, code, retryable) => {
      const before = openFds();
      try {
        openPartitionSensor(spec, roots("v1"));
        expect.unreachable();
      } catch (e) {
        expect((e as WeirError).code).toBe(code);
        expect((e as WeirError).retryable).toBe(retryable);
      }
      expect(openFds()).toBe(before);
    },
  );

  it("unexpected content in snmp is COUNTER_MALFORMED naming the file and the text", () => {
    const base = copyFixtures();
    const s = openPartitionSensor(
      { cgroup: "weir/web", interfaces: [veth("vweb0")], pid: 4242 },
      roots("v1", base),
    );
    const snmp = path.join(base, "proc/4242/net/snmp");
    fs.writeFileSync(snmp, "Udp: InDatagrams InErrors\nUdp: 5 oops\n");
    try {
      s.read(0);
      expect.unreachable();
    } catch (e) {
      expect((e as WeirError).code).toBe(ErrorCodes.COUNTER_MALFORMED);
      expect((e as WeirError).message).toContain(snmp);
      expect((e as WeirError).message).toContain("Udp: 5 oops");
    }
    s.close();
  });

  it("close releases every descriptor", () => {
    const before = openFds();
    const s = openPartitionSensor(
      { cgroup: "weir/web", interfaces: [veth("vweb0")], pid: 4242 },
      roots("v1"),
    );
    // 2 cgroup files + 3 interface files + comm, net/dev? (no: host interfaces given) + snmp
    expect(openFds() - before).toBe(2 + 3 + 2);
    s.close();
    expect(openFds()).toBe(before);
  });

  describe("congestionOnlyWhenServing", () => {
    const STAT = "v1/cgroup/cpu/weir/web/cpu.stat";
    const open = (base: string, congestionOnlyWhenServing: boolean) =>
      openPartitionSensor({ cgroup: "weir/web", interfaces: [veth("vweb0")] }, roots("v1", base), {
        congestionOnlyWhenServing,
      });
    const served = (base: string, n: number) =>
      fs.writeFileSync(path.join(base, "sys/class/net/vweb0/statistics/rx_packets"), `${n}\n`);

    it("a window that served nothing reads CPU used alone: throttling carried, no CPU delay", () => {
      const base = copyFixtures();
      const s = open(base, true);
      const a = s.read(0);
      expect(a.nrPeriods).toBe(5120);
      expect(a.cpuDelayNs).toBe(0);
      // CPU used and throttling move, offered traffic arrives, nothing is served
      fs.writeFileSync(
        path.join(base, "v1/cgroup/cpuacct/weir/web/cpuacct.usage"),
        "48238377812\n",
      );
      fs.writeFileSync(
        path.join(base, STAT),
        "nr_periods 5130\nnr_throttled 320\nthrottled_time 18800000000\n",
      );
      fs.writeFileSync(path.join(base, "sys/class/net/vweb0/statistics/tx_packets"), "3300\n");
      const b = s.read(100);
      expect(b.cpuUsageNs - a.cpuUsageNs).toBe(25_000_000);
      expect(b.offeredPackets - a.offeredPackets).toBe(300);
      expect([b.nrPeriods, b.nrThrottled, b.throttledNs]).toEqual([
        a.nrPeriods,
        a.nrThrottled,
        a.throttledNs,
      ]);
      expect(b.cpuDelayNs).toBeUndefined();
      // cpu.stat is not read at all in such a window: a malformed one does not fail it
      fs.writeFileSync(path.join(base, STAT), "garbage\n");
      expect(s.read(200).nrPeriods).toBe(5120);
      // served again: read in full (the malformed file now fails the read, as without the option)
      served(base, 712);
      expect(() => s.read(300)).toThrow(/cpu\.stat/);
      fs.writeFileSync(
        path.join(base, STAT),
        "nr_periods 5140\nnr_throttled 330\nthrottled_time 18900000000\n",
      );
      served(base, 713);
      const c = s.read(400);
      expect([c.nrPeriods, c.nrThrottled, c.throttledNs]).toEqual([5140, 330, 18_900_000_000]);
      expect(c.cpuDelayNs).toBeDefined();
      s.close();
    });

    it("idleCpuReadEveryMs: an idle window reads CPU used at most once per interval, carrying it (cpuAtMs) between", () => {
      const base = copyFixtures();
      const USAGE = path.join(base, "v1/cgroup/cpuacct/weir/web/cpuacct.usage");
      const everyMs = 1000;
      const phase = idleCpuReadPhaseMs("weir/web", everyMs);
      expect(phase).toBeGreaterThanOrEqual(0);
      expect(phase).toBeLessThan(everyMs);
      const s = openPartitionSensor(
        { cgroup: "weir/web", interfaces: [veth("vweb0")] },
        roots("v1", base),
        { congestionOnlyWhenServing: true, idleCpuReadEveryMs: everyMs },
      );
      // the usage counter moves 1 ms of CPU every 100 ms; which reads saw it anew?
      const readAt: number[] = [];
      let usage = 48213377812;
      let last = s.read(0);
      readAt.push(0);
      for (let t = 100; t <= 4000; t += 100) {
        usage += 1e6;
        fs.writeFileSync(USAGE, `${usage}\n`);
        const x = s.read(t);
        if (x.cpuAtMs === undefined) {
          readAt.push(t);
          expect(x.cpuUsageNs).toBe(usage);
        } else {
          // carried: the last counters read, and when
          expect(x.cpuUsageNs).toBe(last.cpuUsageNs);
          expect(x.cpuAtMs).toBe(readAt.at(-1));
          expect(x.cpuDelayNs).toBeUndefined();
        }
        last = x;
      }
      // first deadline at the phase, then one read per interval (the first cycle past it)
      const gaps = readAt.slice(2).map((t, i) => t - readAt[i + 1]!);
      expect(readAt[1]! - readAt[0]!).toBe(Math.ceil(phase / 100) * 100 || 100);
      expect(gaps.length).toBeGreaterThanOrEqual(3);
      for (const g of gaps) expect(g).toBe(everyMs);
      // serving again: read at once, whatever the deadline, and in full (CPU delay too)
      served(base, 712);
      const w = s.read(4100);
      expect(w.cpuAtMs).toBeUndefined();
      expect(w.cpuDelayNs).toBeDefined();
      s.close();
    });

    it("idleCpuReadEveryMs needs congestionOnlyWhenServing: alone it changes nothing", () => {
      const base = copyFixtures();
      const s = openPartitionSensor(
        { cgroup: "weir/web", interfaces: [veth("vweb0")] },
        roots("v1", base),
        { idleCpuReadEveryMs: 1000 },
      );
      for (let t = 0; t <= 500; t += 100) expect(s.read(t).cpuAtMs).toBeUndefined();
      s.close();
    });

    it("off (the default): every read reads throttling and CPU delay", () => {
      const base = copyFixtures();
      const s = open(base, false);
      s.read(0);
      fs.writeFileSync(
        path.join(base, STAT),
        "nr_periods 5130\nnr_throttled 320\nthrottled_time 18800000000\n",
      );
      const b = s.read(100);
      expect(b.nrPeriods).toBe(5130);
      expect(b.cpuDelayNs).toBeDefined();
      s.close();
    });

    it("a partition without packet counters (batch) reads them every time", () => {
      const base = copyFixtures();
      const s = openPartitionSensor({ cgroup: "weir/web", interfaces: [] }, roots("v1", base), {
        congestionOnlyWhenServing: true,
      });
      s.read(0);
      fs.writeFileSync(
        path.join(base, STAT),
        "nr_periods 5130\nnr_throttled 320\nthrottled_time 18800000000\n",
      );
      expect(s.read(100).nrPeriods).toBe(5130);
      s.close();
    });
  });

  describe("throttlingOnlyUnderQuota (v1)", () => {
    const STAT = "v1/cgroup/cpu/weir/web/cpu.stat";
    const USAGE = "v1/cgroup/cpuacct/weir/web/cpuacct.usage";
    const open = (base: string, cgroupTree: "v1" | "v2" = "v1") =>
      openPartitionSensor(
        { cgroup: "weir/web", interfaces: [veth("vweb0")] },
        roots(cgroupTree, base),
        {
          throttlingOnlyUnderQuota: true,
        },
      );
    const stat = (base: string, periods: number, throttled: number) =>
      fs.writeFileSync(
        path.join(base, STAT),
        `nr_periods ${periods}\nnr_throttled ${throttled}\nthrottled_time ${throttled * 1e6}\n`,
      );
    const throttling = (x: { nrPeriods: number; nrThrottled: number }) => [
      x.nrPeriods,
      x.nrThrottled,
    ];

    it("reads the counters until told no quota is in force, once more, then carries them", () => {
      const base = copyFixtures();
      const s = open(base);
      // not told yet: read every time (the baseline included)
      expect(throttling(s.read(0))).toEqual([5120, 312]);
      stat(base, 5130, 315);
      expect(throttling(s.read(100))).toEqual([5130, 315]);
      // no quota: one more read (what moved before it went), then cpu.stat is not read at all
      s.quotaInForce!(false);
      stat(base, 5140, 318);
      expect(throttling(s.read(200))).toEqual([5140, 318]);
      fs.writeFileSync(path.join(base, STAT), "garbage\n");
      fs.writeFileSync(path.join(base, USAGE), "48238377812\n");
      const c = s.read(300);
      expect(throttling(c)).toEqual([5140, 318]);
      expect(c.throttledNs).toBe(318e6);
      // CPU used is still read every time
      expect(c.cpuUsageNs).toBe(48238377812);
      s.quotaInForce!(false);
      expect(throttling(s.read(400))).toEqual([5140, 318]);
      s.close();
    });

    it("a quota written: read again from the next read on (the carried counters are the baseline)", () => {
      const base = copyFixtures();
      const s = open(base);
      s.read(0);
      s.quotaInForce!(false);
      s.read(100);
      fs.writeFileSync(path.join(base, STAT), "garbage\n");
      expect(throttling(s.read(200))).toEqual([5120, 312]);
      s.quotaInForce!(true);
      expect(() => s.read(300)).toThrow(/cpu\.stat/);
      stat(base, 5125, 314);
      expect(throttling(s.read(400))).toEqual([5125, 314]);
      // cannot say (null): read
      s.quotaInForce!(null);
      stat(base, 5126, 315);
      expect(throttling(s.read(500))).toEqual([5126, 315]);
      s.close();
    });

    it("without the option, or on v2 (one cpu.stat for both), being told changes nothing", () => {
      const base = copyFixtures();
      const plain = openPartitionSensor(
        { cgroup: "weir/web", interfaces: [veth("vweb0")] },
        roots("v1", base),
      );
      plain.read(0);
      plain.quotaInForce?.(false);
      plain.read(100);
      stat(base, 5130, 320);
      expect(throttling(plain.read(200))).toEqual([5130, 320]);
      plain.close();
      const v2 = open(base, "v2");
      const a = v2.read(0);
      v2.quotaInForce!(false);
      v2.read(100);
      fs.writeFileSync(
        path.join(base, "v2/cgroup/weir/web/cpu.stat"),
        "usage_usec 9000000\nnr_periods 130\nnr_throttled 40\nthrottled_usec 1600000\n",
      );
      const b = v2.read(200);
      expect(b.cpuUsageNs).toBe(9e9);
      expect([b.nrPeriods, b.nrThrottled]).toEqual([130, 40]);
      expect(a.nrPeriods).toBe(120);
      v2.close();
    });
  });
});
