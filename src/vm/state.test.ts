import { describe, expect, it } from "vitest";
import { defaultVmStateFile, parseVmState, splitLinkId, tapLinkId } from "./state.ts";

const vm = {
  name: "p1",
  index: 0,
  netns: "weirvm-p1",
  tapIf: "tap0",
  hostAddr: "198.18.139.125",
  guestAddr: "198.18.139.126",
  prefixLen: 30,
  mac: "52:54:00:77:00:00",
  cgroup: "weirvm/p1",
  cgroupDirs: ["/sys/fs/cgroup/cpu/weirvm/p1", "/sys/fs/cgroup/cpuacct/weirvm/p1"],
  maxCpus: 3,
  memMiB: 512,
  qmpSocket: "/run/weir/vms-weirvm.p1.qmp",
  shmFile: "/dev/shm/weir-weirvm-p1.ivshmem",
  shmBytes: 1048576,
  serialLog: "/run/weir/vms-weirvm.p1.serial.log",
  qemuLog: "/run/weir/vms-weirvm.p1.qemu.log",
  guestFiles: "/run/weir/vms-weirvm.p1.guest",
  keyHex: "ab".repeat(32),
  qemuPid: 4828,
};
const state = {
  version: 1,
  kind: "vms",
  prefix: "weirvm",
  stateFile: "/run/weir/vms-weirvm.json",
  createdAtEpochMs: 1,
  updatedAtEpochMs: 2,
  expiresAtEpochMs: 3,
  cgroup: {
    version: 1,
    root: "/sys/fs/cgroup",
    cpu: "/sys/fs/cgroup/cpu",
    cpuacct: "/sys/fs/cgroup/cpuacct",
  },
  vms: [vm],
  resources: [
    { kind: "link", id: "weirvm-p1/tap0", status: "created", owner: "p1" },
    { kind: "process", id: "weir:weirvm/p1", status: "planned", owner: "p1" },
  ],
};

describe("the VM testbed's record", () => {
  it("round-trips through JSON", () => {
    const text = JSON.stringify(state);
    expect(parseVmState(text, "f.json")).toEqual(state);
  });
  it("refuses a cgroup testbed's record and broken JSON, naming the file", () => {
    const { kind: _, ...noKind } = state;
    expect(() => parseVmState(JSON.stringify(noKind), "/run/weir/testbed-x.json")).toThrow(
      /state file \/run\/weir\/testbed-x.json is not a VM testbed record: kind/,
    );
    expect(() => parseVmState("{", "f.json")).toThrow(/state file f.json is not JSON/);
  });
  it("names a tap by its namespace", () => {
    expect(tapLinkId("weirvm-p1", "tap0")).toBe("weirvm-p1/tap0");
    expect(splitLinkId("weirvm-p1/tap0")).toEqual({ netns: "weirvm-p1", ifname: "tap0" });
    expect(splitLinkId("veth0")).toEqual({ netns: null, ifname: "veth0" });
    expect(defaultVmStateFile("weirvm")).toBe("/run/weir/vms-weirvm.json");
  });
});
