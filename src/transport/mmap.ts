// A file mapped MAP_SHARED into this process through koffi + libc mmap (docs/measured-facts.md).
// The returned ArrayBuffer aliases the mapping: after close() it must never be touched
// again (the memory is unmapped), so callers keep it private and guard every access.
import { closeSync, fstatSync, ftruncateSync, openSync } from "node:fs";
import koffi from "koffi";
import { ErrorCodes, WeirError } from "../core/errors.ts";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
/** Fault every page in at map time, so the first scan does not pay 600 page faults. */
const MAP_POPULATE = 0x8000;
const MAP_FAILED = 0xffffffffffffffffn;

interface Libc {
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (addr: unknown, len: number) => number;
}

let libc: Libc | undefined;
function loadLibc(): Libc {
  if (libc === undefined) {
    const lib = koffi.load("libc.so.6");
    libc = {
      mmap: lib.func("void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)"),
      munmap: lib.func("int munmap(void *addr, size_t len)"),
    };
  }
  return libc;
}

export interface MappedFile {
  /** The mapping; valid until close(). */
  readonly buffer: ArrayBuffer;
  readonly length: number;
  close(): void;
}

/**
 * Map `length` bytes of `path` shared. With `create`, the file is created (mode 0600) and
 * grown to `length` if shorter; without it, the file must exist and be at least that long.
 */
export function mapSharedFile(path: string, length: number, opts: { create: boolean }): MappedFile {
  if (!Number.isInteger(length) || length <= 0)
    throw new RangeError(`length must be a positive integer: current value is ${length}`);
  let fd: number;
  try {
    fd = openSync(path, opts.create ? "a+" : "r+", 0o600);
  } catch (cause) {
    throw new WeirError(ErrorCodes.TRANSPORT, `cannot open shared-memory file ${path}`, { cause });
  }
  try {
    // "a+" creates without truncating; reopen read-write for mmap (O_APPEND is harmless for mmap).
    const size = fstatSync(fd).size;
    if (size < length) {
      if (!opts.create)
        throw new WeirError(
          ErrorCodes.TRANSPORT,
          `shared-memory file ${path} holds ${size} bytes, needs ${length}`,
        );
      ftruncateSync(fd, length);
    }
    const { mmap, munmap } = loadLibc();
    const addr = mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (addr === null || addr === MAP_FAILED || koffi.address(addr) === MAP_FAILED)
      throw new WeirError(ErrorCodes.TRANSPORT, `mmap of ${path} (${length} bytes) failed`);
    const buffer = koffi.view(addr, length);
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
  } finally {
    closeSync(fd);
  }
}
