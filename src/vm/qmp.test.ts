import { describe, expect, it } from "vitest";
import { type HotpluggableCpu, hotplugCpuId, planCpuStep } from "./qmp.ts";

// query-hotpluggable-cpus of `-smp 1,maxcpus=3 -cpu max` (QEMU 7.2), as QEMU lists it.
const slot = (core: number, qomPath?: string): HotpluggableCpu => ({
  type: "max-x86_64-cpu",
  "vcpus-count": 1,
  props: { "socket-id": 0, "core-id": core, "thread-id": 0 },
  ...(qomPath ? { "qom-path": qomPath } : {}),
});
const boot = slot(0, "/machine/unattached/device[0]");

describe("planCpuStep", () => {
  it("plugs the free slot with the lowest core id", () => {
    expect(planCpuStep([slot(2), slot(1), boot], 2)).toEqual({
      action: "add",
      driver: "max-x86_64-cpu",
      id: "weir-cpu1",
      props: { "socket-id": 0, "core-id": 1, "thread-id": 0 },
    });
  });
  it("unplugs the weir-plugged vCPU with the highest core id, never a boot vCPU", () => {
    const plugged = [
      slot(2, `/machine/peripheral/${hotplugCpuId(2)}`),
      slot(1, `/machine/peripheral/${hotplugCpuId(1)}`),
      boot,
    ];
    expect(planCpuStep(plugged, 2)).toEqual({ action: "remove", id: "weir-cpu2" });
    expect(planCpuStep([slot(2), slot(1), boot], 0)).toEqual({ action: "none" });
  });
  it("does nothing at the count, or when no slot is left", () => {
    expect(planCpuStep([slot(2), slot(1), boot], 1)).toEqual({ action: "none" });
    expect(planCpuStep([boot], 4)).toEqual({ action: "none" });
  });

  it("never plugs a slot weir unplugged before (QEMU 7.2 TCG aborts on that)", () => {
    const slots = [slot(3), slot(2), slot(1), boot];
    expect(planCpuStep(slots, 2, new Set(["weir-cpu1"]))).toMatchObject({
      action: "add",
      id: "weir-cpu2",
    });
    expect(planCpuStep(slots, 2, new Set(["weir-cpu1", "weir-cpu2", "weir-cpu3"]))).toEqual({
      action: "none",
    });
  });
});
