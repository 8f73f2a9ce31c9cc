// A VM testbed: N QEMU guests, each a partition — a network namespace with a tap the guest's
// NIC is on (198.18.0.0/15), a cgroup QEMU and every vCPU thread run in, an ivshmem region
// that is its partition's own slot page (the one its agent reports into), QMP on a unix
// socket, and the serial console in a file. Every resource is recorded before it is
// created, so `vmsDown` (down.ts) removes exactly the record's processes, taps, namespaces,
// cgroups and files — also after a SIGKILL of `vmsUp`.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { detectCgroupLayout } from "../cgroup/layout.ts";
import { cgroupDirs } from "../cgroup/paths.ts";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { blockAddresses, startBlockFor } from "../testbed/addresses.ts";
import { setGroupShares } from "../testbed/cgroups.ts";
import { defaultPartitionNames, validatePartitionName, validatePrefix } from "../testbed/names.ts";
import { disableIpv6InNetns, ip, netnsExists } from "../testbed/net.ts";
import { isAlive, spawnInCgroups } from "../testbed/procs.ts";
import { markCreated, planResource, recordThenCreate, writeState } from "../testbed/state.ts";
import { SLOT_BYTES, slotPath } from "../transport/shm.ts";
import { vmsDown } from "./down.ts";
import { agentRunScript, GUEST_FILES, LogTail } from "./guest.ts";
import { ensureGuestRoot, type GuestExport, mountablePackageRoot } from "./guest-root.ts";
import { ensureInitramfs, GUEST_READY_LINE, GUEST_RUN_EXIT_LINE } from "./initramfs.ts";
import { ensureKernel } from "./kernel.ts";
import { guestMac, qemuArgv, qemuTag } from "./qemu.ts";
import {
  defaultVmStateFile,
  readVmState,
  tapLinkId,
  type VmRecord,
  type VmState,
} from "./state.ts";

export const DEFAULT_VM_CACHE_DIR = "/var/cache/weir/vm";
/** The ivshmem region of one partition: its slot, one page (a power of two, as a BAR must be). */
export const SLOT_REGION_BYTES = SLOT_BYTES;
export const TAP_IFNAME = "tap0";

/** The guest agent's default report period: Node under TCG is ~18× slower than on the host. */
export const VM_AGENT_INTERVAL_MS = 500;

/**
 * The manager's cycle for guest partitions (`intervalMs`): twice the agent's report period, so
 * every cycle holds a report from every guest. With a shorter cycle (200 ms against reports
 * every 500 ms) a guest had no throughput in most cycles; the policy holds such a partition at
 * its previous allocation and gives the spare to the partitions that did report, so two idle
 * guests' entitlements locked at whatever split they had when their reports fell out of step
 * (1,500m / 500m, 1,223m / 776m seen): the idle guest kept asking for 2 vCPUs.
 */
export const VM_MANAGER_INTERVAL_MS = 2 * VM_AGENT_INTERVAL_MS;

export interface VmsOptions {
  prefix?: string;
  /** A count (p1..pN) or names. */
  vms: number | string[];
  /** vCPUs a guest may be given by hot-plug (it boots with 1). Default 3. */
  maxCpus?: number;
  /** Guest RAM. Default 512 MiB. */
  memMiB?: number;
  cacheDir?: string;
  stateFile?: string;
  /** Guests power themselves off after this long (default 1 h). */
  maxLifetimeMs?: number;
  /**
   * The guests' parent cgroup's CPU share against its siblings (v1 cpu.shares; v2 cpu.weight
   * converted), as the testbed's `groupCpuShares`: on a machine busy with other work, QEMU
   * (a TCG guest boots in ~8 s of CPU) otherwise competes as one group against every process
   * at the top level. Default: the kernel's (1024).
   */
  groupCpuShares?: number;
  /** Wait this long for each guest's /init to say it is ready (default 120 s). */
  bootTimeoutMs?: number;
  /** Run `weir agent` in every guest (default true); otherwise the guest only boots. */
  agent?: boolean;
  /** Agent report period in the guest (default VM_AGENT_INTERVAL_MS). */
  agentIntervalMs?: number;
  /**
   * The manager's slot directory (`transport.shm.path`): each guest's ivshmem region is its
   * partition's slot `<slotDir>/<index>`, the manager's own page, so the manager must have
   * published the slots first. Without it each guest gets a zeroed page of its own in
   * /dev/shm (enough for a guest without an agent).
   */
  slotDir?: string;
  /** Report keys in hex, one per guest in order (default: random 32 bytes each). */
  keysHex?: string[];
  /**
   * Run the testbed's packet server in every guest on this UDP port (on the guest's NIC, at
   * `guestAddr`), each request costing `costRounds` SHA-256 rounds. Needs the compiled build.
   */
  packetServer?: { port: number; costRounds: number };
  /** Replace the guest's run script (a shell script run in the guest's chroot of its root). */
  guestScript?: string;
  /** The weir package whose compiled dist/ the guests run (default this one). */
  packageRoot?: string;
  log?: (line: string) => void;
}

function requireRoot(): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    throw new WeirError(ErrorCodes.NOT_ROOT, "a VM testbed needs root (namespaces, taps, cgroups)");
}

/** This package's root, from src/vm or from its compiled dist/src/vm. */
function defaultPackageRoot(): string {
  const here = import.meta.dirname;
  return join(here, here.endsWith("/dist/src/vm") ? "../../.." : "../..");
}

/** A path the guest's /init can take from the kernel command line (no spaces, commas, colons). */
async function recordFile(
  st: VmState,
  file: string,
  owner: string,
  content: string | Buffer,
  mode = 0o600,
) {
  await recordThenCreate(
    st,
    "file",
    file,
    owner,
    () => false,
    () => writeFileSync(file, content, { mode }),
  );
}

/** Plan one guest's record (names, addresses, files); nothing is created yet. */
function planVm(
  st: VmState,
  name: string,
  index: number,
  o: Required<Pick<VmsOptions, "maxCpus" | "memMiB">> & Pick<VmsOptions, "slotDir" | "keysHex">,
): VmRecord {
  const base = st.stateFile.replace(/\.json$/, "");
  const a = blockAddresses(startBlockFor(st.prefix) + index);
  const rel = `${st.prefix}/${name}`;
  return {
    name,
    index,
    netns: `${st.prefix}-${name}`,
    tapIf: TAP_IFNAME,
    hostAddr: a.hostAddr,
    guestAddr: a.nsAddr,
    prefixLen: a.prefixLen,
    mac: guestMac(index),
    cgroup: rel,
    cgroupDirs: cgroupDirs(st.cgroup, rel),
    maxCpus: o.maxCpus,
    memMiB: o.memMiB,
    qmpSocket: `${base}.${name}.qmp`,
    shmFile: o.slotDir ? slotPath(o.slotDir, index) : `/dev/shm/weir-${st.prefix}-${name}.ivshmem`,
    shmBytes: SLOT_REGION_BYTES,
    serialLog: `${base}.${name}.serial.log`,
    qemuLog: `${base}.${name}.qemu.log`,
    guestFiles: `${base}.${name}.guest`,
    keyHex: o.keysHex?.[index] ?? randomBytes(32).toString("hex"),
    qemuPid: null,
  };
}

/**
 * Boot the guests and wait until each one's /init reports ready (and, with the agent, has
 * started it). On failure everything recorded is torn down and the error rethrown.
 */
export async function vmsUp(opts: VmsOptions): Promise<VmState> {
  requireRoot();
  const prefix = validatePrefix(opts.prefix ?? "weirvm");
  const stateFile = opts.stateFile ?? defaultVmStateFile(prefix);
  if (readVmState(stateFile))
    throw new WeirError(ErrorCodes.TESTBED, `${stateFile} exists: run vmsDown on it first`);
  const names = typeof opts.vms === "number" ? defaultPartitionNames(opts.vms) : opts.vms;
  for (const n of names) validatePartitionName(n);
  const log = opts.log ?? (() => {});
  const cacheDir = opts.cacheDir ?? DEFAULT_VM_CACHE_DIR;
  const lifetimeMs = opts.maxLifetimeMs ?? 3_600_000;
  const now = Date.now();
  const st: VmState = {
    version: 1,
    kind: "vms",
    prefix,
    stateFile,
    createdAtEpochMs: now,
    updatedAtEpochMs: now,
    expiresAtEpochMs: now + lifetimeMs,
    cgroup: detectCgroupLayout("/sys/fs/cgroup"),
    vms: [],
    resources: [],
  };
  mkdirSync(join(stateFile, ".."), { recursive: true });
  writeState(st);
  try {
    const kernel = await ensureKernel(cacheDir);
    const initramfs = await ensureInitramfs(cacheDir, kernel);
    const packageRoot = mountablePackageRoot(opts.packageRoot ?? defaultPackageRoot());
    const root = await ensureGuestRoot(cacheDir, { packageRoot });
    for (const e of root.exports) mountablePackageRoot(e.guestPath);
    log(`guest root ${root.dir} (+ ${packageRoot}/dist, node_modules over 9p, read-only)`);
    log(
      `kernel ${kernel.packageName}, initramfs ${initramfs.path} (${initramfs.modules.length} modules)`,
    );
    for (const dir of cgroupDirs(st.cgroup, prefix))
      await recordThenCreate(
        st,
        "cgroup",
        dir,
        "",
        () => existsSync(dir),
        () => mkdirSync(dir),
      );
    if (opts.groupCpuShares !== undefined) setGroupShares(st.cgroup, prefix, opts.groupCpuShares);
    const sizes = {
      maxCpus: opts.maxCpus ?? 3,
      memMiB: opts.memMiB ?? 512,
      slotDir: opts.slotDir,
      keysHex: opts.keysHex,
    };
    for (const [i, name] of names.entries()) {
      const vm = planVm(st, name, i, sizes);
      st.vms.push(vm);
      writeState(st);
      await createVm(st, vm, {
        vmlinuz: kernel.vmlinuz,
        initramfs: initramfs.path,
        lifetimeMs,
        agent: opts.agent ?? true,
        agentIntervalMs: opts.agentIntervalMs ?? VM_AGENT_INTERVAL_MS,
        packageRoot,
        exports: root.exports,
        guestScript: opts.guestScript,
        slotDir: opts.slotDir,
        packetServer: opts.packetServer,
      });
      log(
        `vm ${name}: qemu pid ${vm.qemuPid}, netns ${vm.netns} ${vm.tapIf} ${vm.hostAddr} <-> guest ${vm.guestAddr}, ivshmem ${vm.shmFile}`,
      );
    }
    const bootTimeoutMs = opts.bootTimeoutMs ?? 120_000;
    for (const vm of st.vms) {
      const tail = new LogTail(vm.serialLog);
      const ready = await tail.waitFor(
        new RegExp(`${GUEST_READY_LINE}|${GUEST_RUN_EXIT_LINE}|FAILED`),
        bootTimeoutMs,
      );
      if (!ready?.line.includes(GUEST_READY_LINE) || !isAlive(vm.qemuPid!))
        throw new WeirError(
          ErrorCodes.TESTBED,
          `guest ${vm.name} did not come up within ${bootTimeoutMs} ms (${ready?.line ?? "no ready line"}; QEMU ${isAlive(vm.qemuPid!) ? "running" : "exited"}; serial console ${vm.serialLog}, QEMU log ${vm.qemuLog}; both are removed at teardown, so their last lines follow)\n--- serial console ---\n${lastLines(vm.serialLog, 25)}\n--- QEMU log ---\n${lastLines(vm.qemuLog, 10)}`,
        );
      log(`vm ${vm.name}: ${ready.line.trim()}`);
    }
    return st;
  } catch (err) {
    await vmsDown(stateFile).catch(() => {});
    throw err;
  }
}

async function createVm(
  st: VmState,
  vm: VmRecord,
  o: {
    vmlinuz: string;
    initramfs: string;
    lifetimeMs: number;
    agent: boolean;
    agentIntervalMs: number;
    packageRoot: string;
    exports: GuestExport[];
    guestScript: string | undefined;
    slotDir: string | undefined;
    packetServer: VmsOptions["packetServer"];
  },
): Promise<void> {
  for (const d of vm.cgroupDirs)
    await recordThenCreate(
      st,
      "cgroup",
      d,
      vm.name,
      () => existsSync(d),
      () => mkdirSync(d),
    );
  await recordThenCreate(
    st,
    "netns",
    vm.netns,
    vm.name,
    () => netnsExists(vm.netns),
    () => ip(["netns", "add", vm.netns]),
  );
  await disableIpv6InNetns(vm.netns);
  await recordThenCreate(
    st,
    "link",
    tapLinkId(vm.netns, vm.tapIf),
    vm.name,
    () => false,
    () => ip(["-n", vm.netns, "tuntap", "add", "dev", vm.tapIf, "mode", "tap"]),
  );
  await ip(["-n", vm.netns, "addr", "replace", `${vm.hostAddr}/${vm.prefixLen}`, "dev", vm.tapIf]);
  await ip(["-n", vm.netns, "link", "set", vm.tapIf, "up"]);
  await ip(["-n", vm.netns, "link", "set", "lo", "up"]);

  // The partition's region: its slot in the manager's directory (the manager's, not ours:
  // not recorded), or a zeroed page of its own.
  if (!o.slotDir) {
    await recordThenCreate(
      st,
      "file",
      vm.shmFile,
      vm.name,
      () => existsSync(vm.shmFile),
      () => writeFileSync(vm.shmFile, Buffer.alloc(vm.shmBytes), { mode: 0o600 }),
    );
  } else if (!existsSync(vm.shmFile)) {
    throw new WeirError(
      ErrorCodes.TESTBED,
      `slot ${vm.shmFile} of guest ${vm.name} does not exist: start the manager's slots (transport.shm.path) first`,
    );
  }
  await recordFile(st, `${vm.guestFiles}.key`, vm.name, vm.keyHex);
  const script =
    o.guestScript ??
    (o.agent
      ? agentRunScript({
          weirEntry: join(o.packageRoot, "dist", "src", "cli", "main.js"),
          nodeBin: process.execPath,
          partitionIndex: vm.index,
          intervalMs: o.agentIntervalMs,
          ...(o.packetServer
            ? {
                server: {
                  ...o.packetServer,
                  entry: join(o.packageRoot, "dist", "src", "testbed", "serve-entry.js"),
                  maxLifetimeMs: o.lifetimeMs,
                },
              }
            : {}),
        })
      : "#!/bin/sh\necho 'weir-vm: no agent'\n");
  await recordFile(st, `${vm.guestFiles}.run.sh`, vm.name, script, 0o700);
  for (const f of [vm.serialLog, vm.qemuLog, vm.qmpSocket]) {
    planResource(st, "file", f, vm.name);
    markCreated(st, "file", f);
  }
  writeState(st);

  const tag = qemuTag(st.prefix, vm.name);
  const argv = [
    "nsenter",
    `--net=/run/netns/${vm.netns}`,
    "--",
    ...qemuArgv({
      tag,
      vmlinuz: o.vmlinuz,
      initramfs: o.initramfs,
      kernelArgs: [
        `weir.ip=${vm.guestAddr}/${vm.prefixLen}`,
        `weir.mounts=${o.exports
          .filter((e) => e.guestPath !== "/")
          .map((e) => `${e.tag}:${e.guestPath}`)
          .join(",")}`,
        `weir.lifetime=${Math.ceil(o.lifetimeMs / 1000)}`,
      ],
      maxCpus: vm.maxCpus,
      memMiB: vm.memMiB,
      tapIf: vm.tapIf,
      mac: vm.mac,
      qmpSocket: vm.qmpSocket,
      shmFile: vm.shmFile,
      shmBytes: vm.shmBytes,
      serialLog: vm.serialLog,
      exports: o.exports,
      fwCfgFiles: GUEST_FILES.map((name) => ({ name, file: `${vm.guestFiles}.${name}` })),
    }),
  ];
  const planned = planResource(st, "process", tag, vm.name);
  planned.argv = argv;
  planned.cgroupDirs = vm.cgroupDirs;
  writeState(st);
  const sp = spawnInCgroups(argv, vm.cgroupDirs, vm.qemuLog);
  markCreated(st, "process", tag, { pid: sp.pid, startTime: sp.startTime });
  vm.qemuPid = sp.pid;
  writeState(st);
}

/** The record of a running VM testbed (for tests and the CLI). */
export const vmRecord = (st: VmState, name: string): VmRecord => {
  const vm = st.vms.find((v) => v.name === name);
  if (!vm) throw new WeirError(ErrorCodes.TESTBED, `no guest ${name} in ${st.stateFile}`);
  return vm;
};

/** The last `n` lines of a log file, or why it could not be read (for an error message). */
function lastLines(file: string, n: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
  } catch (err) {
    return `(not readable: ${(err as Error).message})`;
  }
}
