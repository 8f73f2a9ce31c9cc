import { describe, expect, it } from "vitest";
import { hostCpuFromSamples } from "../sensors/host-cpu.ts";
import { SimWorld } from "./world.ts";

describe("SimWorld.hostCpuSensor: the simulated machine as /proc/stat shows it", () => {
  it("an empty machine is all idle; a batch hog on 2 CPUs makes it all busy", () => {
    const world = new SimWorld({ cpus: 2, tickMs: 1 });
    const host = world.hostCpuSensor();
    const a = host.read(world.nowMs());
    world.advance(1000);
    const b = host.read(world.nowMs());
    // 1 s on 2 CPUs = 200 ticks at USER_HZ 100, all idle
    expect(b.ticks.idleTicks - a.ticks.idleTicks).toBe(200);
    expect(hostCpuFromSamples(a, b)).toEqual({
      cpus: 2,
      idleFraction: 1,
      busyCores: 0,
      stealFraction: 0,
    });
    world.addBatch("hog");
    world.advance(1000);
    const c = host.read(world.nowMs());
    // the hog wants every CPU and nothing caps it: 200 of 200 ticks busy
    expect(hostCpuFromSamples(b, c)).toEqual({
      cpus: 2,
      idleFraction: 0,
      busyCores: 2,
      stealFraction: 0,
    });
  });

  it("a capped hog leaves the rest idle: cap 500m of 2 CPUs -> 1.5 cores idle (75 %)", () => {
    const world = new SimWorld({ cpus: 2, tickMs: 1 });
    world.addBatch("hog");
    // 50,000 us per 100,000 us period = 500m
    world.hypervisor.writeFile("hog", "cpu.cfs_quota_us", "50000");
    const host = world.hostCpuSensor();
    world.advance(100);
    const a = host.read(world.nowMs());
    world.advance(2000);
    const b = host.read(world.nowMs());
    const use = hostCpuFromSamples(a, b)!;
    // 2 s on 2 CPUs = 400 ticks; 0.5 cores busy = 100 ticks (± 1 of tick rounding)
    expect(use.busyCores).toBeCloseTo(0.5, 1);
    expect(use.idleFraction).toBeCloseTo(0.75, 2);
  });
});
