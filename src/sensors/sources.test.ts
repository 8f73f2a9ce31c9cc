import path from "node:path";
import { describe, expect, it } from "vitest";
import { openPartitionSensor } from "./partition.ts";
import { COUNTER_SOURCES, counterSource, defaultPacketSources } from "./sources.ts";
import type { Roots, SensorSpec } from "./types.ts";

const fixtures = path.join(import.meta.dirname, "fixtures");
const roots: Roots = {
  sysfs: path.join(fixtures, "sys"),
  procfs: path.join(fixtures, "proc"),
  cgroupfs: path.join(fixtures, "v1", "cgroup"),
};
const veth = { name: "vweb0", offered: "tx", served: "rx" } as const;

describe("counter source registry", () => {
  it("lists each source once, by name, with what feeds it", () => {
    const names = COUNTER_SOURCES.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(["interfaces", "pid", "agent"]));
    expect(counterSource("agent").feed).toBe("agent");
    expect(counterSource("pid").feed).toBe("host");
  });

  it("names the rule and the known sources for an unknown name", () => {
    expect(() => counterSource("ebpf")).toThrow(
      /packets: must name a counter source \(one of interfaces, pid, agent.*\) \(rule: counter-source\): got "ebpf"/,
    );
  });

  it("defaults to what weir read before packets: existed (interfaces, then pid)", () => {
    expect(defaultPacketSources({ cgroup: "x", interfaces: [veth], pid: 1 })).toEqual([
      { name: "interfaces" },
      { name: "pid" },
    ]);
    expect(defaultPacketSources({ cgroup: "x", interfaces: [] })).toEqual([]);
  });

  it("a partition sensor reads the named sources: packets = [interfaces, pid] is the default's sample", () => {
    const spec: SensorSpec = { cgroup: "weir/web", interfaces: [veth], pid: 4242 };
    const implicit = openPartitionSensor(spec, roots, { cpuDelay: false });
    const explicit = openPartitionSensor(
      { ...spec, packets: [{ name: "interfaces" }, { name: "pid" }] },
      roots,
      { cpuDelay: false },
    );
    const onlyIfs = openPartitionSensor({ ...spec, packets: [{ name: "interfaces" }] }, roots, {
      cpuDelay: false,
    });
    expect(explicit.read(1)).toEqual(implicit.read(1));
    // without pid: the Udp InErrors (2289) are no longer added to dropped
    expect(implicit.read(1).droppedPackets - onlyIfs.read(1).droppedPackets).toBe(2289);
    for (const s of [implicit, explicit, onlyIfs]) s.close();
  });
});
