// Shared mappings through koffi + libc (docs/measured-facts.md): an open file mapped MAP_SHARED,
// sealed memfds, and one reserved address range holding many one-file mappings side by side
// (so a scan of N files is one ArrayBuffer). Every ArrayBuffer returned here aliases mapped
// memory: after close() it must never be touched again, so callers keep it private and guard
// every access.
import { closeSync, ftruncateSync } from "node:fs";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { ffi } from "./ffi.ts";

const PROT_NONE = 0;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
/** Fault every page in at map time, so the first scan does not pay a page fault per page. */
const MAP_POPULATE = 0x8000;
const MAP_FAILED = 0xffffffffffffffffn;
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
/** The kernel's page size on every platform weir runs on (x86-64, arm64 with 4 KiB pages). */
export const PAGE_BYTES = 4096;

interface Libc {
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  mmapAt: (
    addr: bigint,
    len: number,
    prot: number,
    flags: number,
    fd: number,
    off: number,
  ) => unknown;
  munmap: (addr: unknown, len: number) => number;
  memfdCreate: (name: string, flags: number) => number;
  fcntl: (fd: number, cmd: number, ...args: unknown[]) => number;
}

let libc: Libc | undefined;
function loadLibc(): Libc {
  if (libc === undefined) {
    const lib = ffi().load("libc.so.6");
    libc = {
      mmap: lib.func("void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)"),
      mmapAt: lib.func(
        "void *mmap(uintptr_t addr, size_t len, int prot, int flags, int fd, long off)",
      ),
      munmap: lib.func("int munmap(void *addr, size_t len)"),
      memfdCreate: lib.func("int memfd_create(const char *name, unsigned int flags)"),
      fcntl: lib.func("int fcntl(int fd, int cmd, ...)"),
    };
  }
  return libc;
}

const failed = (addr: unknown): boolean =>
  addr === null || addr === MAP_FAILED || ffi().address(addr) === MAP_FAILED;

export interface MappedFile {
  /** The mapping; valid until close(). */
  readonly buffer: ArrayBuffer;
  readonly length: number;
  close(): void;
}

/** Map `length` bytes of the open file `fd` shared, read-write. The fd may be closed after. */
export function mapFd(fd: number, length: number, what: string): MappedFile {
  if (!Number.isInteger(length) || length <= 0)
    throw new RangeError(`length must be a positive integer: current value is ${length}`);
  const { mmap, munmap } = loadLibc();
  const addr = mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (failed(addr))
    throw new WeirError(ErrorCodes.TRANSPORT, `mmap of ${what} (${length} bytes) failed`);
  const buffer = ffi().view(addr, length);
  let open = true;
  return {
    buffer,
    length,
    close() {
      if (!open) return;
      open = false;
      munmap(addr, length);
    },
  };
}

/**
 * A memfd of `length` bytes whose size is sealed (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL):
 * nobody holding it — not even a process that opened it read-write — can truncate or grow it,
 * so a mapping of it can never fault with SIGBUS. Returns the fd (close-on-exec).
 */
export function sealedMemfd(name: string, length: number): number {
  const { memfdCreate, fcntl } = loadLibc();
  const fd = memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw new WeirError(ErrorCodes.TRANSPORT, `memfd_create(${name}) failed`);
  try {
    ftruncateSync(fd, length);
    if (fcntl(fd, F_ADD_SEALS, "int", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !== 0)
      throw new WeirError(ErrorCodes.TRANSPORT, `sealing memfd ${name} failed`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** The seals on `fd` (F_SEAL_* bits), or -1 when the file cannot carry seals. */
export function fileSeals(fd: number): number {
  return loadLibc().fcntl(fd, F_GET_SEALS);
}

/**
 * One reserved address range of `pages` pages in which file mappings are placed side by side
 * (MAP_FIXED inside the reservation, which this object owns), so N one-page files read as
 * one ArrayBuffer. Every page must be mapped before `buffer` is read (a reserved page that
 * was never mapped faults).
 */
export class MappedRegion {
  readonly length: number;
  readonly buffer: ArrayBuffer;
  private readonly addr: unknown;
  private readonly base: bigint;
  private open = true;

  constructor(readonly pages: number) {
    if (!Number.isInteger(pages) || pages < 1)
      throw new RangeError(`pages must be a positive integer: current value is ${pages}`);
    this.length = pages * PAGE_BYTES;
    const { mmap } = loadLibc();
    const addr = mmap(
      null,
      this.length,
      PROT_NONE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1,
      0,
    );
    if (failed(addr))
      throw new WeirError(ErrorCodes.TRANSPORT, `reserving ${this.length} bytes failed`);
    this.addr = addr;
    this.base = BigInt(ffi().address(addr));
    this.buffer = ffi().view(addr, this.length);
  }

  /** Map the first page of `fd` shared, read-write, at page `page` of the region. */
  mapPage(page: number, fd: number): void {
    if (!this.open) throw new WeirError(ErrorCodes.TRANSPORT, "mapped region is closed");
    if (!Number.isInteger(page) || page < 0 || page >= this.pages)
      throw new RangeError(`page must be 0..${this.pages - 1}: current value is ${page}`);
    const at = this.base + BigInt(page * PAGE_BYTES);
    const got = loadLibc().mmapAt(
      at,
      PAGE_BYTES,
      PROT_READ | PROT_WRITE,
      MAP_SHARED | MAP_FIXED | MAP_POPULATE,
      fd,
      0,
    );
    if (failed(got) || BigInt(ffi().address(got)) !== at)
      throw new WeirError(ErrorCodes.TRANSPORT, `mapping page ${page} of the slot region failed`);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    loadLibc().munmap(this.addr, this.length);
  }
}
