// koffi, for the transport's native calls (libcrypto's SHA-256 in mac.ts, libc's mmap in
// mmap.ts, libc's socket calls in udp-batch.ts). koffi (a native addon: about 6 MB resident once
// loaded) is loaded on first use, not with a module that imports this one, so a process that
// never calls it (`weir run` without agents or shared memory) never loads it
// (docs/performance.md).
import { createRequire } from "node:module";

const requireFromHere = createRequire(import.meta.url);
let koffiModule: typeof import("koffi") | undefined;

export const ffi = (): typeof import("koffi") => (koffiModule ??= requireFromHere("koffi"));

/** Zeroed native memory that never moves, with its address and a JS view of it; free() once. */
export interface NativeMemory {
  readonly ptr: unknown;
  readonly address: bigint;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

export function nativeMemory(length: number): NativeMemory {
  const ptr = ffi().alloc("uint8_t", length);
  const bytes = new Uint8Array(ffi().view(ptr, length));
  bytes.fill(0);
  return { ptr, address: BigInt(ffi().address(ptr)), bytes, view: new DataView(bytes.buffer) };
}

/** Give `m` back; its view must never be touched again. */
export function freeNativeMemory(m: NativeMemory): void {
  ffi().free(m.ptr);
}
