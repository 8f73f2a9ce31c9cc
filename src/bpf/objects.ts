// The bpf(2) commands weir's counters are made of, each filling its `union bpf_attr`: create
// the per-CPU counters map and the record of the cgroup the programs are attached to (its
// value read and written whole), load a cgroup skb program (again with the verifier's log when
// refused), attach and detach with BPF_F_ALLOW_MULTI, pin and take pins up, query a hook's
// programs and a program's id. Failures become WeirErrors saying how to fix them.
import fs from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { encodeInsns, type Insn } from "./insn.ts";
import { COUNTERS_VALUE_BYTES } from "./programs.ts";
import {
  BPF_CGROUP_INET_INGRESS,
  BPF_F_ALLOW_MULTI,
  BPF_MAP_CREATE,
  BPF_MAP_LOOKUP_ELEM,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_UPDATE_ELEM,
  BPF_OBJ_GET,
  BPF_OBJ_GET_INFO_BY_FD,
  BPF_OBJ_PIN,
  BPF_PROG_ATTACH,
  BPF_PROG_LOAD,
  BPF_PROG_QUERY,
  BPF_PROG_TYPE_CGROUP_SKB,
  BpfSyscallError,
  bpf,
  errnoName,
  freeNative,
  nativeBuffer,
  nativeString,
} from "./syscall.ts";

const VERIFIER_LOG_BYTES = 64 * 1024;

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

export function fail(o: { partition: string }, what: string, e: unknown): never {
  if (e instanceof BpfSyscallError)
    throw new WeirError(
      ErrorCodes.BPF_UNAVAILABLE,
      `partition ${o.partition}: ${what} failed (${errnoName(e.errno)}): ${advice(e.errno)}`,
      { cause: e },
    );
  throw e;
}

export function closeFd(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

export function openCgroupDir(o: { partition: string; cgroupDir: string }): number {
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

export function createMap(o: { partition: string }): number {
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
 * The value size of the `attached` record: PATH_MAX, a cgroup v2 directory's absolute path
 * NUL-padded (every path open() accepts fits; an array map's value may be far larger).
 */
export const ATTACHED_RECORD_BYTES = 4096;

/**
 * The record of where pinned programs are attached: a BPF_MAP_TYPE_ARRAY with one entry of
 * ATTACHED_RECORD_BYTES (bpffs holds only bpf objects, so the record is a map pinned beside
 * them). The programs never look at it.
 */
export function createAttachedRecordMap(o: { partition: string }): number {
  const attr = nativeBuffer(128);
  try {
    attr.view.setUint32(0, BPF_MAP_TYPE_ARRAY, true); // map_type
    attr.view.setUint32(4, 4, true); // key_size: u32 index
    attr.view.setUint32(8, ATTACHED_RECORD_BYTES, true); // value_size
    attr.view.setUint32(12, 1, true); // max_entries
    attr.bytes.set(new TextEncoder().encode("weir_attached"), 28); // map_name[16]
    return bpf(BPF_MAP_CREATE, attr, "BPF_MAP_CREATE");
  } catch (e) {
    return fail(o, "creating the map that records the cgroup its programs are attached to", e);
  } finally {
    freeNative(attr);
  }
}

/**
 * BPF_MAP_LOOKUP_ELEM or BPF_MAP_UPDATE_ELEM (flags BPF_ANY) on entry 0 of an array map, its
 * value `value` bytes long; returns the value after the call. Throws BpfSyscallError.
 */
function firstElem(cmd: number, name: string, mapFd: number, value: Uint8Array): Uint8Array {
  const key = nativeBuffer(4);
  const buf = nativeBuffer(value.length);
  const attr = nativeBuffer(128);
  try {
    buf.bytes.set(value);
    attr.view.setUint32(0, mapFd, true); // map_fd
    attr.view.setBigUint64(8, key.address, true); // key: index 0
    attr.view.setBigUint64(16, buf.address, true); // value
    bpf(cmd, attr, name);
    return buf.bytes.slice();
  } finally {
    for (const b of [key, buf, attr]) freeNative(b);
  }
}

/** Entry 0 of an array map, `size` bytes. Throws BpfSyscallError. */
export const lookupFirst = (mapFd: number, size: number): Uint8Array =>
  firstElem(BPF_MAP_LOOKUP_ELEM, "BPF_MAP_LOOKUP_ELEM", mapFd, new Uint8Array(size));

/** Write entry 0 of an array map whole. Throws BpfSyscallError. */
export function updateFirst(mapFd: number, bytes: Uint8Array): void {
  firstElem(BPF_MAP_UPDATE_ELEM, "BPF_MAP_UPDATE_ELEM", mapFd, bytes);
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

export function attachCall(
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

export function pinObject(fd: number, file: string): void {
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

export function pinnedObject(file: string): number {
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
export function queryAttached(cgroupFd: number, attachType: number): number[] {
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
export function programId(progFd: number): number {
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
