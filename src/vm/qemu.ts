// QEMU's command line for one guest (pure). TCG with one thread per vCPU and `-cpu max`:
// on hosts whose /dev/kvm cannot run a stock kernel (a nested paravirtualised KVM) that is
// what boots; `accel: "kvm"` runs the same guest faster where KVM works.
// The guest starts with 1 vCPU and may be given up to `maxCpus` by QMP hot-plug.

export interface QemuSpec {
  /** Identifies the process in `ps` and in tear-down: an argv element of its own. */
  tag: string;
  vmlinuz: string;
  initramfs: string;
  /** Kernel command line additions (weir.ip=… weir.gw=… weir.run=…). */
  kernelArgs: string[];
  maxCpus: number;
  memMiB: number;
  /** Tap inside the namespace QEMU runs in. */
  tapIf: string;
  /** Guest NIC MAC, 52:54:00:… (QEMU's prefix). */
  mac: string;
  qmpSocket: string;
  /** The partition's shared-memory region (a /dev/shm file), `shmBytes` a power of two. */
  shmFile: string;
  shmBytes: number;
  serialLog: string;
  /** Host directories shared read-only over 9p, each under its mount tag (src/vm/guest-root.ts). */
  exports: ReadonlyArray<{ tag: string; hostPath: string }>;
  /** Files QEMU hands the guest as fw_cfg items `opt/weir/<name>` (read once at start). */
  fwCfgFiles: ReadonlyArray<{ name: string; file: string }>;
  accel?: "tcg" | "kvm";
}

/** Where a fw_cfg file of this guest shows in the guest's sysfs (module qemu_fw_cfg). */
export const fwCfgName = (name: string): string => `opt/weir/${name}`;

export const QEMU_BINARY = "qemu-system-x86_64";
/** The CPU model QMP hot-plugs (`query-hotpluggable-cpus` names it). */
export const HOTPLUG_CPU_DRIVER = "max-x86_64-cpu";

/** The tag QEMU carries as its `-name` (an argv element equal to this). */
export const qemuTag = (prefix: string, name: string): string => `weir:${prefix}/${name}`;

/** A deterministic MAC from the guest's index: 52:54:00:77:HH:LL. */
export function guestMac(index: number): string {
  const hh = ((index >> 8) & 0xff).toString(16).padStart(2, "0");
  const ll = (index & 0xff).toString(16).padStart(2, "0");
  return `52:54:00:77:${hh}:${ll}`;
}

const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

export function qemuArgv(s: QemuSpec): string[] {
  if (!Number.isInteger(s.maxCpus) || s.maxCpus < 1 || s.maxCpus > 64)
    throw new RangeError(`'maxCpus' must be an integer 1..64: current value is ${s.maxCpus}`);
  if (!isPowerOfTwo(s.shmBytes))
    throw new RangeError(
      `'shmBytes' must be a power of two (an ivshmem BAR): current value is ${s.shmBytes}`,
    );
  const accel =
    s.accel === "kvm"
      ? ["-accel", "kvm", "-cpu", "host"]
      : ["-accel", "tcg,thread=multi", "-cpu", "max"];
  return [
    QEMU_BINARY,
    "-name",
    s.tag,
    ...accel,
    "-smp",
    `1,maxcpus=${s.maxCpus}`,
    "-m",
    String(s.memMiB),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-serial",
    `file:${s.serialLog}`,
    "-kernel",
    s.vmlinuz,
    "-initrd",
    s.initramfs,
    "-append",
    ["console=ttyS0", "panic=-1", "rdinit=/init", ...s.kernelArgs].join(" "),
    ...s.exports.flatMap((e) => [
      "-fsdev",
      `local,id=${e.tag},path=${e.hostPath},security_model=none,readonly=on,multidevs=remap`,
      "-device",
      `virtio-9p-pci,fsdev=${e.tag},mount_tag=${e.tag}`,
    ]),
    ...s.fwCfgFiles.flatMap((f) => ["-fw_cfg", `name=${fwCfgName(f.name)},file=${f.file}`]),
    "-netdev",
    `tap,id=net0,ifname=${s.tapIf},script=no,downscript=no`,
    "-device",
    `virtio-net-pci,netdev=net0,mac=${s.mac}`,
    "-object",
    `memory-backend-file,id=shm0,share=on,mem-path=${s.shmFile},size=${s.shmBytes}`,
    "-device",
    "ivshmem-plain,memdev=shm0",
    "-qmp",
    `unix:${s.qmpSocket},server=on,wait=off`,
  ];
}
