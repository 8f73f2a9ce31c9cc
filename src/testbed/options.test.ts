import { describe, expect, it } from "vitest";
import { logFileFor, netRootsOf, testbedRoots, wantedTestbed } from "./options.ts";

describe("testbed options", () => {
  it("fills every default: names from counts, 600 rounds, port 9000, one hog thread, netns + veth, servers' heaps steady", () => {
    expect(wantedTestbed({ partitions: 2, hogs: 1 })).toEqual({
      hostNetwork: false,
      serverWorkers: 1,
      steadyServerHeap: true,
      partitions: [
        { name: "p1", costRounds: 600, port: 9000 },
        { name: "p2", costRounds: 600, port: 9000 },
      ],
      hogs: [{ name: "hog1", cpus: 1 }],
    });
  });

  it("keeps a partition's own cost and port over the testbed's", () => {
    const w = wantedTestbed({
      partitions: [{ name: "a", port: 9100 }, { name: "b" }],
      costRounds: 40,
      port: 9200,
      hogs: [{ name: "hog", cpus: 2 }],
    });
    expect(w.partitions).toEqual([
      { name: "a", costRounds: 40, port: 9100 },
      { name: "b", costRounds: 40, port: 9200 },
    ]);
    expect(w.hogs).toEqual([{ name: "hog", cpus: 2 }]);
    expect(wantedTestbed({ partitions: 1, hostNetwork: true }).hostNetwork).toBe(true);
    expect(wantedTestbed({ partitions: 1, serverWorkers: 2 }).serverWorkers).toBe(2);
    expect(wantedTestbed({ partitions: 1, steadyServerHeap: false }).steadyServerHeap).toBe(false);
    expect(() => wantedTestbed({ partitions: 1, serverWorkers: 0.5 })).toThrow(
      "'serverWorkers' must be an integer within 1..64: current value is 0.5",
    );
  });

  it("refuses a name used twice, by a partition and a hog alike, naming it", () => {
    expect(() => wantedTestbed({ partitions: [{ name: "a" }], hogs: [{ name: "a" }] })).toThrow(
      /partition name "a" is used twice/,
    );
  });

  it("roots: defaults filled, and the network helpers get theirs", () => {
    const roots = testbedRoots({ procfs: "/tmp/proc" });
    expect(roots).toEqual({
      cgroupfs: "/sys/fs/cgroup",
      procfs: "/tmp/proc",
      sysfs: "/sys",
      netnsDir: "/run/netns",
    });
    expect(netRootsOf(roots)).toEqual({
      netnsDir: "/run/netns",
      sysfs: "/sys",
      procfs: "/tmp/proc",
    });
    expect(logFileFor("/run/weir/testbed-x.json", "p1")).toBe("/run/weir/testbed-x.p1.log");
  });
});
