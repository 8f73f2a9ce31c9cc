// Per-cgroup packet and byte counters in the kernel: one per-CPU array map and two
// BPF_PROG_TYPE_CGROUP_SKB programs (programs.ts) attached with BPF_F_ALLOW_MULTI at the
// cgroup v2 directory's inet ingress and egress hooks. Optionally pinned in bpffs so a
// restarted weir finds the same map and programs (and the counts they kept meanwhile).
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { encodeInsns, type Insn } from "./insn.ts";
import {
  COUNTERS_VALUE_BYTES,
  countingProgram,
  EGRESS_PACKETS_OFFSET,
  INGRESS_PACKETS_OFFSET,
} from "./programs.ts";
import {
  BPF_CGROUP_INET_EGRESS,
  BPF_CGROUP_INET_INGRESS,
  BPF_F_ALLOW_MULTI,
  BPF_MAP_CREATE,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_OBJ_GET,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_OBJ_PIN,
  BPF_PROG_ATTACH,
  BPF_PROG_DETACH,
  BPF_PROG_LOAD,
  BPF_PROG_QUERY,
  BPF_PROG_TYPE_CGROUP_SKB,
  BpfSyscallError,
  bpf,
  errnoName,
  freeNative,
  type NativeBuffer,
  nativeBuffer,
  nativeString,
} from "./syscall.ts";

/** Cumulative counts since the programs were first attached (packets are skbs: see docs). */
export interface CgroupSkbCounts {
  ingressPackets: number;
  ingressBytes: number;
  egressPackets: number;
  egressBytes: number;
}

export interface CgroupSkbCountersOptions {
  /** The partition (for errors). */
  partition: string;
  /** Its cgroup v2 directory, e.g. /sys/fs/cgroup/unified/weir/web. */
  cgroupDir: string;
  /** CPUs the kernel may ever bring online (/sys/devices/system/cpu/possible): per-CPU values. */
  possibleCpus: number;
  /**
   * The partition's directory in bpffs. Objects pinned there by an earlier weir are taken up
   * again (a restart); null: never look there.
   */
  pinDir: string | null;
  /**
   * Pin new objects in `pinDir` and leave them pinned and attached at close (counting while
   * weir is away). False: at close, detach and remove any pins found.
   */
  pin: boolean;
}

const VERIFIER_LOG_BYTES = 64 * 1024;
const PIN_NAMES = { map: "counters", ingress: "ingress", egress: "egress" } as const;

/** The fix for a bpf() errno, in words. */
function advice(errno: number): string {
  if (errno === 1 || errno === 13)
    return "run weir as root, or give it CAP_BPF and CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_BPF CAP_NET_ADMIN)";
  if (errno === 38)
    return "this kernel has no bpf() system call (CONFIG_BPF_SYSCALL): count this partition with interfaces or pid instead";
  if (errno === 22 || errno === 95 || errno === 524)
    return "this kernel cannot attach cgroup BPF programs (CONFIG_CGROUP_BPF, Linux >= 4.10; BPF_F_ALLOW_MULTI needs 4.15): count this partition with interfaces or pid instead";
  return "see bpf(2) for this errno";
}

function fail(o: { partition: string }, what: string, e: unknown): never {
  if (e instanceof BpfSyscallError)
    throw new WeirError(
      ErrorCodes.BPF_UNAVAILABLE,
      `partition ${o.partition}: ${what} failed (${errnoName(e.errno)}): ${advice(e.errno)}`,
      { cause: e },
    );
  throw e;
}

function closeFd(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

function openCgroupDir(o: CgroupSkbCountersOptions): number {
  try {
    return fs.openSync(o.cgroupDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WeirError(
      ErrorCodes.CGROUP_GONE,
      `partition ${o.partition}: its cgroup v2 directory ${o.cgroupDir} cannot be opened (${code}): create it and move the partition's processes into it before they open their sockets (mkdir ${o.cgroupDir}; echo <pid> > ${o.cgroupDir}/cgroup.procs), or point cgroup at the directory systemd or the container runtime made`,
      { cause: e },
    );
  }
}

function createMap(o: CgroupSkbCountersOptions): number {
  const attr = nativeBuffer(128);
  try {
    attr.view.setUint32(0, BPF_MAP_TYPE_PERCPU_ARRAY, true); // map_type
    attr.view.setUint32(4, 4, true); // key_size: u32 index
    attr.view.setUint32(8, COUNTERS_VALUE_BYTES, true); // value_size
    attr.view.setUint32(12, 1, true); // max_entries
    attr.bytes.set(new TextEncoder().encode("weir_counters"), 28); // map_name[16]
    return bpf(BPF_MAP_CREATE, attr, "BPF_MAP_CREATE");
  } catch (e) {
    return fail(o, "creating the counters map", e);
  } finally {
    freeNative(attr);
  }
}

/**
 * BPF_PROG_LOAD of a cgroup skb program; returns its fd. On a refusal it loads again with the
 * verifier's log and puts the log in the error (BPF_REJECTED).
 */
export function loadCgroupSkbProgram(
  o: { partition: string },
  program: readonly Insn[],
  attachType: number,
): number {
  const code = encodeInsns(program);
  const insns = nativeBuffer(code.length);
  insns.bytes.set(code);
  const license = nativeString("GPL");
  const attr = nativeBuffer(128);
  const log = nativeBuffer(VERIFIER_LOG_BYTES);
  const fill = (logLevel: number) => {
    attr.bytes.fill(0);
    attr.view.setUint32(0, BPF_PROG_TYPE_CGROUP_SKB, true); // prog_type
    attr.view.setUint32(4, code.length / 8, true); // insn_cnt
    attr.view.setBigUint64(8, insns.address, true); // insns
    attr.view.setBigUint64(16, license.address, true); // license
    attr.view.setUint32(24, logLevel, true); // log_level
    if (logLevel > 0) {
      attr.view.setUint32(28, VERIFIER_LOG_BYTES, true); // log_size
      attr.view.setBigUint64(32, log.address, true); // log_buf
    }
    attr.bytes.set(
      new TextEncoder().encode(
        attachType === BPF_CGROUP_INET_INGRESS ? "weir_ingress" : "weir_egress",
      ),
      48,
    ); // prog_name
    attr.view.setUint32(68, attachType, true); // expected_attach_type
  };
  const hook = attachType === BPF_CGROUP_INET_INGRESS ? "ingress" : "egress";
  try {
    fill(0);
    try {
      return bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD");
    } catch (e) {
      if (!(e instanceof BpfSyscallError) || (e.errno !== 22 && e.errno !== 13)) throw e;
      fill(1);
      try {
        return bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD");
      } catch (e2) {
        const end = log.bytes.indexOf(0);
        const text = new TextDecoder()
          .decode(log.bytes.subarray(0, end < 0 ? log.bytes.length : end))
          .trim();
        if (text === "") throw e2;
        throw new WeirError(
          ErrorCodes.BPF_REJECTED,
          `partition ${o.partition}: the kernel's verifier rejected weir's ${hook} counting program (${errnoName((e2 as BpfSyscallError).errno)}); this kernel does not accept what it uses (a per-CPU array lookup and atomic adds from a cgroup skb program): count this partition with interfaces or pid instead, and report the log. Verifier log:\n${text}`,
          { cause: e2 },
        );
      }
    }
  } catch (e) {
    return fail(o, `loading the ${hook} program`, e);
  } finally {
    for (const b of [insns, license, attr, log]) freeNative(b);
  }
}

function attachCall(
  cmd: number,
  cgroupFd: number,
  progFd: number,
  attachType: number,
  what: string,
): void {
  const attr = nativeBuffer(128);
  try {
    attr.view.setUint32(0, cgroupFd, true); // target_fd
    attr.view.setUint32(4, progFd, true); // attach_bpf_fd
    attr.view.setUint32(8, attachType, true); // attach_type
    attr.view.setUint32(12, cmd === BPF_PROG_ATTACH ? BPF_F_ALLOW_MULTI : 0, true); // attach_flags
    bpf(cmd, attr, what);
  } finally {
    freeNative(attr);
  }
}

function pinObject(fd: number, file: string): void {
  const p = nativeString(file);
  const attr = nativeBuffer(128);
  try {
    attr.view.setBigUint64(0, p.address, true); // pathname
    attr.view.setUint32(8, fd, true); // bpf_fd
    bpf(BPF_OBJ_PIN, attr, `BPF_OBJ_PIN ${file}`);
  } finally {
    freeNative(p);
    freeNative(attr);
  }
}

function pinnedObject(file: string): number {
  const p = nativeString(file);
  const attr = nativeBuffer(128);
  try {
    attr.view.setBigUint64(0, p.address, true); // pathname
    return bpf(BPF_OBJ_GET, attr, `BPF_OBJ_GET ${file}`);
  } finally {
    freeNative(p);
    freeNative(attr);
  }
}

/** Ids of the programs attached directly at the hook of the cgroup open as `cgroupFd` (BPF_PROG_QUERY). */
function queryAttached(cgroupFd: number, attachType: number): number[] {
  const ids = nativeBuffer(64 * 4);
  const attr = nativeBuffer(128);
  try {
    attr.view.setUint32(0, cgroupFd, true); // target_fd
    attr.view.setUint32(4, attachType, true); // attach_type
    attr.view.setBigUint64(16, ids.address, true); // prog_ids
    attr.view.setUint32(24, 64, true); // prog_cnt (in: room, out: how many)
    bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY");
    const n = attr.view.getUint32(24, true);
    return Array.from({ length: n }, (_, i) => ids.view.getUint32(i * 4, true));
  } finally {
    freeNative(ids);
    freeNative(attr);
  }
}

/** Ids of the programs attached directly at a cgroup's hook. */
export function attachedProgramIds(cgroupDir: string, attachType: number): number[] {
  const fd = fs.openSync(cgroupDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return queryAttached(fd, attachType);
  } finally {
    closeFd(fd);
  }
}

/** A loaded program's id (struct bpf_prog_info.id, BPF_OBJ_GET_INFO_BY_FD). */
function programId(progFd: number): number {
  const info = nativeBuffer(8);
  const attr = nativeBuffer(128);
  try {
    attr.view.setUint32(0, progFd, true); // bpf_fd
    attr.view.setUint32(4, 8, true); // info_len: type and id
    attr.view.setBigUint64(8, info.address, true); // info
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "BPF_OBJ_GET_INFO_BY_FD");
    return info.view.getUint32(4, true);
  } finally {
    freeNative(info);
    freeNative(attr);
  }
}

export class CgroupSkbCounters {
  private readonly o: CgroupSkbCountersOptions;
  private readonly cgroupFd: number;
  private readonly mapFd: number;
  private readonly progFds: { ingress: number; egress: number };
  /** Whether this opening found its objects pinned by an earlier one (a restart). */
  readonly resumed: boolean;
  private readonly lookupAttr: NativeBuffer;
  private readonly key: NativeBuffer;
  private readonly value: NativeBuffer;
  private closed = false;

  /** Create (or find pinned), load, attach. Throws WeirError: CGROUP_GONE, BPF_UNAVAILABLE, BPF_REJECTED. */
  constructor(o: CgroupSkbCountersOptions) {
    this.o = o;
    this.cgroupFd = openCgroupDir(o);
    const fds: number[] = [];
    try {
      const pins =
        o.pinDir === null
          ? null
          : {
              map: path.join(o.pinDir, PIN_NAMES.map),
              ingress: path.join(o.pinDir, PIN_NAMES.ingress),
              egress: path.join(o.pinDir, PIN_NAMES.egress),
            };
      this.resumed = pins !== null && Object.values(pins).every((f) => fs.existsSync(f));
      if (pins !== null && this.resumed) {
        try {
          this.mapFd = pinnedObject(pins.map);
          fds.push(this.mapFd);
          this.progFds = { ingress: pinnedObject(pins.ingress), egress: pinnedObject(pins.egress) };
          fds.push(this.progFds.ingress, this.progFds.egress);
        } catch (e) {
          fail(o, `opening the objects pinned under ${o.pinDir}`, e);
        }
      } else {
        this.mapFd = createMap(o);
        fds.push(this.mapFd);
        const ingress = loadCgroupSkbProgram(
          o,
          countingProgram(this.mapFd, INGRESS_PACKETS_OFFSET),
          BPF_CGROUP_INET_INGRESS,
        );
        fds.push(ingress);
        const egress = loadCgroupSkbProgram(
          o,
          countingProgram(this.mapFd, EGRESS_PACKETS_OFFSET),
          BPF_CGROUP_INET_EGRESS,
        );
        fds.push(egress);
        this.progFds = { ingress, egress };
      }
      for (const [hook, type] of [
        ["ingress", BPF_CGROUP_INET_INGRESS],
        ["egress", BPF_CGROUP_INET_EGRESS],
      ] as const) {
        try {
          // a pinned program that stayed attached while weir was away is attached already
          // (the kernel refuses the same program twice on one hook with EINVAL)
          if (
            this.resumed &&
            queryAttached(this.cgroupFd, type).includes(programId(this.progFds[hook]))
          )
            continue;
          attachCall(BPF_PROG_ATTACH, this.cgroupFd, this.progFds[hook], type, "BPF_PROG_ATTACH");
        } catch (e) {
          fail(o, `attaching the ${hook} program to ${o.cgroupDir}`, e);
        }
      }
      if (pins !== null && o.pin && !this.resumed) {
        try {
          fs.mkdirSync(o.pinDir!, { recursive: true, mode: 0o700 });
          pinObject(this.mapFd, pins.map);
          pinObject(this.progFds.ingress, pins.ingress);
          pinObject(this.progFds.egress, pins.egress);
        } catch (e) {
          this.detach();
          if (e instanceof BpfSyscallError)
            throw new WeirError(
              ErrorCodes.BPF_UNAVAILABLE,
              `partition ${o.partition}: pinning its counters under ${o.pinDir} failed (${errnoName(e.errno)}): mount the bpf filesystem there (mount -t bpf bpf ${path.dirname(o.pinDir!)}), or set pin: false`,
              { cause: e },
            );
          throw e;
        }
      }
    } catch (e) {
      for (const fd of fds) closeFd(fd);
      closeFd(this.cgroupFd);
      throw e;
    }
    this.lookupAttr = nativeBuffer(128);
    this.key = nativeBuffer(4);
    this.value = nativeBuffer(COUNTERS_VALUE_BYTES * o.possibleCpus);
    this.lookupAttr.view.setUint32(0, this.mapFd, true); // map_fd
    this.lookupAttr.view.setBigUint64(8, this.key.address, true); // key
    this.lookupAttr.view.setBigUint64(16, this.value.address, true); // value
  }

  /** The four counts summed over every CPU's slot: one BPF_MAP_LOOKUP_ELEM. */
  read(): CgroupSkbCounts {
    if (this.closed)
      throw new WeirError(
        ErrorCodes.COUNTER_UNREADABLE,
        `partition ${this.o.partition}: its BPF counters are closed`,
      );
    try {
      bpf(BPF_MAP_LOOKUP_ELEM, this.lookupAttr, "BPF_MAP_LOOKUP_ELEM");
    } catch (e) {
      throw new WeirError(
        ErrorCodes.COUNTER_UNREADABLE,
        `partition ${this.o.partition}: reading its BPF counters failed: ${(e as Error).message}`,
        { retryable: true, cause: e },
      );
    }
    const v = this.value.view;
    const sums = [0, 0, 0, 0];
    for (let cpu = 0; cpu < this.o.possibleCpus; cpu++)
      for (let k = 0; k < 4; k++) {
        const at = cpu * COUNTERS_VALUE_BYTES + k * 8;
        sums[k]! += v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
      }
    return {
      ingressPackets: sums[0]!,
      ingressBytes: sums[1]!,
      egressPackets: sums[2]!,
      egressBytes: sums[3]!,
    };
  }

  private detach(): void {
    for (const [hook, type] of [
      ["ingress", BPF_CGROUP_INET_INGRESS],
      ["egress", BPF_CGROUP_INET_EGRESS],
    ] as const) {
      try {
        attachCall(BPF_PROG_DETACH, this.cgroupFd, this.progFds[hook], type, "BPF_PROG_DETACH");
      } catch {
        // not attached (the cgroup went away, or someone detached it): nothing to undo
      }
    }
  }

  /**
   * Release. With `pin` the programs stay attached and pinned, counting while weir is away.
   * Without it they are detached and any pins removed (the map and programs then vanish
   * with the last fd).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.o.pin) {
      this.detach();
      if (this.o.pinDir !== null) {
        for (const name of Object.values(PIN_NAMES))
          fs.rmSync(path.join(this.o.pinDir, name), { force: true });
        // the partition's directory, then weir's when it was the last partition there
        for (const dir of [this.o.pinDir, path.dirname(this.o.pinDir)])
          try {
            fs.rmdirSync(dir);
          } catch {
            // not empty, or already gone
          }
      }
    }
    for (const fd of [this.mapFd, this.progFds.ingress, this.progFds.egress, this.cgroupFd])
      closeFd(fd);
    for (const b of [this.lookupAttr, this.key, this.value]) freeNative(b);
  }
}
