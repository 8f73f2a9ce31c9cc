import { describe, expect, it } from "vitest";
import { constant } from "./load.ts";
import { SimWorld } from "./world.ts";

describe("simulated network partition", () => {
  it("serves everything with ms latency when it has the CPU, and counts like real counters", () => {
    const world = new SimWorld({ cpus: 2, seed: 3, drift: { amplitude: 0 } });
    world.addNetwork("web", { load: constant(1000), velocityPacketsPerCpuSec: 4000 });
    const sensor = world.sensor("web");
    world.advance(5000);
    const s = sensor.read(world.nowMs());
    // 1,000 packets/s for 5 s, Poisson: about 5,000 offered, all served, none dropped.
    expect(s.offeredPackets).toBeGreaterThan(4700);
    expect(s.offeredPackets).toBeLessThan(5300);
    expect(s.droppedPackets).toBe(0);
    expect(s.servedPackets).toBeGreaterThan(s.offeredPackets - 10);
    // CPU: served / 4,000 packets per CPU-second = ~1.25 CPU-seconds.
    expect(s.cpuUsageNs / 1e9).toBeCloseTo(s.servedPackets / 4000, 1);
    expect(Number.isInteger(s.servedPackets) && Number.isInteger(s.cpuUsageNs)).toBe(true);
    expect(world.latencyUs.getValueAtPercentile(99)).toBeLessThan(5000);
  });

  it("drops what overflows the receive queue and queues the rest (latency = queue / service rate)", () => {
    const world = new SimWorld({ cpus: 2, seed: 4, drift: { amplitude: 0 } });
    world.addNetwork("web", {
      load: constant(2000),
      velocityPacketsPerCpuSec: 4000,
      queuePackets: 500,
    });
    // Cap at 250 millicores: serves 0.25 * 4,000 = 1,000 packets/s of the 2,000 offered.
    world.hypervisor.writeFile("web", "cpu.cfs_quota_us", "25000");
    const sensor = world.sensor("web");
    world.advance(10_000);
    const s = sensor.read(world.nowMs());
    expect(s.servedPackets / 10).toBeGreaterThan(900);
    expect(s.servedPackets / 10).toBeLessThan(1100);
    expect(s.droppedPackets / s.offeredPackets).toBeGreaterThan(0.4);
    expect(s.nrThrottled).toBeGreaterThan(80);
    // A full queue of 500 served at 1,000/s waits ~500 ms.
    const p50Ms = world.latencyUs.getValueAtPercentile(50) / 1000;
    expect(p50Ms).toBeGreaterThan(350);
    expect(p50Ms).toBeLessThan(700);
  });

  it("drifts every partition's cost per packet together, within ±30 %", () => {
    const world = new SimWorld({ cpus: 2, seed: 5, drift: { amplitude: 0.3, seed: 11 } });
    const a = world.addNetwork("a", { load: constant(500) });
    const b = world.addNetwork("b", { load: constant(500) });
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    for (let i = 0; i < 600; i++) {
      world.advance(100);
      const ca = a.network!.costPerPacketNs();
      expect(b.network!.costPerPacketNs()).toBe(ca);
      lo = Math.min(lo, ca);
      hi = Math.max(hi, ca);
    }
    const nominal = 1e9 / 3500;
    expect(lo).toBeGreaterThanOrEqual(nominal * 0.7 - 1e-6);
    expect(hi).toBeLessThanOrEqual(nominal * 1.3 + 1e-6);
    expect(hi / lo).toBeGreaterThan(1.1); // it does move
  });

  it("a batch hog takes every CPU nobody else wants, and only that", () => {
    const world = new SimWorld({ cpus: 2, seed: 6, drift: { amplitude: 0 } });
    world.addNetwork("web", { load: constant(1000), velocityPacketsPerCpuSec: 2000 });
    world.addBatch("hog");
    world.advance(4000);
    const web = world.sensor("web").read(world.nowMs());
    const hog = world.sensor("hog").read(world.nowMs());
    // Equal shares, 2 CPUs: web needs 0.5 CPU (< its fair 1.0) and gets it; the hog the other 1.5.
    expect(web.cpuUsageNs / 4e9).toBeCloseTo(0.5, 1);
    expect(hog.cpuUsageNs / 4e9).toBeCloseTo(1.5, 1);
    expect(hog.offeredPackets).toBe(0);
  });
});
