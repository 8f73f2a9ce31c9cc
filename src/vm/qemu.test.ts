import { describe, expect, it } from "vitest";
import { guestMac, qemuArgv, qemuTag } from "./qemu.ts";

const spec = {
  tag: qemuTag("weir", "p1"),
  vmlinuz: "/c/vmlinuz",
  initramfs: "/c/initramfs.cpio",
  kernelArgs: ["weir.ip=198.18.0.2/30"],
  maxCpus: 3,
  memMiB: 512,
  tapIf: "tap0",
  mac: guestMac(1),
  qmpSocket: "/run/weir/p1.qmp",
  shmFile: "/dev/shm/weir-weir-p1.ivshmem",
  shmBytes: 1 << 20,
  serialLog: "/run/weir/p1.serial.log",
  exports: [
    { tag: "hostroot", hostPath: "/var/cache/weir/vm/guest-root-ab" },
    { tag: "weirdist", hostPath: "/opt/weir/dist" },
  ],
  fwCfgFiles: [{ name: "key", file: "/run/weir/p1.guest.key" }],
};
const valuesOf = (argv: string[], flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

describe("qemuArgv", () => {
  it("boots TCG with one vCPU and room to hot-plug up to maxCpus", () => {
    const argv = qemuArgv(spec);
    expect(argv[0]).toBe("qemu-system-x86_64");
    expect(valuesOf(argv, "-name")).toEqual(["weir:weir/p1"]);
    expect(valuesOf(argv, "-accel")).toEqual(["tcg,thread=multi"]);
    expect(valuesOf(argv, "-cpu")).toEqual(["max"]);
    expect(valuesOf(argv, "-smp")).toEqual(["1,maxcpus=3"]);
    expect(valuesOf(argv, "-append")).toEqual([
      "console=ttyS0 panic=-1 rdinit=/init weir.ip=198.18.0.2/30",
    ]);
  });
  it("wires the tap, the partition's ivshmem file, QMP and the serial console", () => {
    const argv = qemuArgv(spec);
    expect(valuesOf(argv, "-netdev")).toEqual(["tap,id=net0,ifname=tap0,script=no,downscript=no"]);
    expect(valuesOf(argv, "-object")).toEqual([
      "memory-backend-file,id=shm0,share=on,mem-path=/dev/shm/weir-weir-p1.ivshmem,size=1048576",
    ]);
    expect(valuesOf(argv, "-device")).toContain("ivshmem-plain,memdev=shm0");
    expect(valuesOf(argv, "-device")).toContain("virtio-net-pci,netdev=net0,mac=52:54:00:77:00:01");
    expect(valuesOf(argv, "-qmp")).toEqual(["unix:/run/weir/p1.qmp,server=on,wait=off"]);
    expect(valuesOf(argv, "-serial")).toEqual(["file:/run/weir/p1.serial.log"]);
  });
  it("shares only the given directories, read-only, and passes per-guest files by fw_cfg", () => {
    const argv = qemuArgv(spec);
    expect(valuesOf(argv, "-fsdev")).toEqual([
      "local,id=hostroot,path=/var/cache/weir/vm/guest-root-ab,security_model=none,readonly=on,multidevs=remap",
      "local,id=weirdist,path=/opt/weir/dist,security_model=none,readonly=on,multidevs=remap",
    ]);
    expect(valuesOf(argv, "-device")).toContain("virtio-9p-pci,fsdev=weirdist,mount_tag=weirdist");
    expect(valuesOf(argv, "-fw_cfg")).toEqual(["name=opt/weir/key,file=/run/weir/p1.guest.key"]);
  });
  it("refuses a BAR size that is not a power of two and a vCPU count out of range", () => {
    expect(() => qemuArgv({ ...spec, shmBytes: 3000 })).toThrow(
      /'shmBytes' must be a power of two.*3000/,
    );
    expect(() => qemuArgv({ ...spec, maxCpus: 0 })).toThrow(
      /'maxCpus' must be an integer 1..64: current value is 0/,
    );
  });
  it("KVM where it works: the same guest, -accel kvm -cpu host", () => {
    const argv = qemuArgv({ ...spec, accel: "kvm" });
    expect(valuesOf(argv, "-accel")).toEqual(["kvm"]);
    expect(valuesOf(argv, "-cpu")).toEqual(["host"]);
  });
});
