// The raw bpf(2) system call through koffi and libc's syscall(), with the command numbers and
// the union bpf_attr layouts of linux/bpf.h. Memory the kernel reads or writes is allocated
// with koffi (it never moves); a call's failure becomes a WeirError that says what to do.
import { createRequire } from "node:module";
import { ErrorCodes, WeirError } from "../core/errors.ts";

// koffi (a native addon: about 6 MB resident once loaded) is loaded on first use, not with this
// module, so a process that never calls it (`weir run` without agents or shared memory) never
// loads it (docs/performance.md).
const requireFromHere = createRequire(import.meta.url);
let koffiModule: typeof import("koffi") | undefined;
const ffi = (): typeof import("koffi") => (koffiModule ??= requireFromHere("koffi"));

/** enum bpf_cmd. */
export const BPF_MAP_CREATE = 0;
export const BPF_MAP_LOOKUP_ELEM = 1;
export const BPF_MAP_UPDATE_ELEM = 2;
export const BPF_PROG_LOAD = 5;
export const BPF_OBJ_PIN = 6;
export const BPF_OBJ_GET = 7;
export const BPF_PROG_ATTACH = 8;
export const BPF_PROG_DETACH = 9;
export const BPF_OBJ_GET_INFO_BY_FD = 15;
export const BPF_PROG_QUERY = 16;
/** enum bpf_map_type. */
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
/** enum bpf_prog_type. */
export const BPF_PROG_TYPE_CGROUP_SKB = 8;
/** enum bpf_attach_type. */
export const BPF_CGROUP_INET_INGRESS = 0;
export const BPF_CGROUP_INET_EGRESS = 1;
/** Attach flag: several programs on one hook (systemd's IP accounting and others keep theirs). */
export const BPF_F_ALLOW_MULTI = 1 << 1;

/** __NR_bpf per architecture (asm/unistd_64.h; arm64 and riscv use the generic table). */
const NR_BPF: Record<string, number> = { x64: 321, arm64: 280, riscv64: 280, ia32: 357 };

/** What bpf_attr the calls here fill: every field they use lies in the first 128 bytes. */
export const ATTR_BYTES = 128;

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  7: "E2BIG",
  9: "EBADF",
  13: "EACCES",
  17: "EEXIST",
  22: "EINVAL",
  28: "ENOSPC",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};
export const errnoName = (e: number): string => ERRNO_NAMES[e] ?? `errno ${e}`;

/** A bpf() call that failed, with its errno (callers turn it into advice). */
export class BpfSyscallError extends Error {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super(`${what}: ${errnoName(errno)}`);
    this.name = "BpfSyscallError";
    this.errno = errno;
  }
}

/** Native memory the kernel may read and write, with a JS view of it. */
export interface NativeBuffer {
  readonly ptr: unknown;
  readonly address: bigint;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

export function nativeBuffer(length: number): NativeBuffer {
  const ptr = ffi().alloc("uint8_t", length);
  const ab = ffi().view(ptr, length);
  const bytes = new Uint8Array(ab);
  bytes.fill(0);
  return { ptr, address: ffi().address(ptr), bytes, view: new DataView(ab) };
}

export function freeNative(b: NativeBuffer): void {
  ffi().free(b.ptr);
}

type SyscallFn = (nr: number, cmd: number, attr: unknown, size: number) => number | bigint;
let syscallFn: SyscallFn | undefined;

function sys(): SyscallFn {
  if (syscallFn === undefined) {
    const nr = NR_BPF[process.arch];
    if (nr === undefined)
      throw new WeirError(
        ErrorCodes.BPF_UNAVAILABLE,
        `bpf() is not wired for the ${process.arch} architecture (known: ${Object.keys(NR_BPF).join(", ")})`,
      );
    const libc = ffi().load("libc.so.6");
    // glibc's syscall() is variadic, but it only moves its integer arguments into the syscall
    // registers, so a fixed prototype calls it the same way (and koffi calls it faster).
    const fn = libc.func("long syscall(long nr, long cmd, void *attr, unsigned long size)");
    syscallFn = (n, cmd, attr, size) => fn(n, cmd, attr, size);
    nrBpf = nr;
  }
  return syscallFn;
}
let nrBpf = 0;

/** bpf(cmd, attr, ATTR_BYTES); the result (an fd, or 0), or BpfSyscallError with errno. */
export function bpf(cmd: number, attr: NativeBuffer, what: string): number {
  const f = sys();
  const r = Number(f(nrBpf, cmd, attr.ptr, ATTR_BYTES));
  if (r < 0) throw new BpfSyscallError(what, ffi().errno());
  return r;
}

/** A NUL-terminated string in native memory (for paths and the license). */
export function nativeString(s: string): NativeBuffer {
  const enc = new TextEncoder().encode(s);
  const b = nativeBuffer(enc.length + 1);
  b.bytes.set(enc);
  return b;
}
