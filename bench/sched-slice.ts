// A task's EEVDF slice (Linux ≥ 6.12: sched_setattr's sched_runtime on a SCHED_OTHER or
// SCHED_BATCH task asks for a custom slice, 0.1–100 ms; 0 gives back the default). A shorter
// slice gives a task an earlier virtual deadline, so it is picked sooner when it wakes and
// may preempt the task running (the kernel's answer to "latency-nice"); its share is still
// its weight's. Used by placement-real's `*-slice` variants: the lever measured on the
// network partitions' tasks beside the hog. Only for the benchmarks: weir does not set it.
import fs from "node:fs";
import { createRequire } from "node:module";
import { cgroupProcs } from "../src/testbed/cgroups.ts";

/** sched_setattr / sched_getattr numbers by architecture. */
const NR: Partial<Record<NodeJS.Architecture, { set: number; get: number }>> = {
  x64: { set: 314, get: 315 },
  arm64: { set: 274, get: 275 },
};
/** struct sched_attr up to sched_util_max (SCHED_ATTR_SIZE_VER1). */
const ATTR_BYTES = 56;
const OFF_POLICY = 4;
const OFF_FLAGS = 8;
const OFF_RUNTIME = 24;
/** SCHED_OTHER, SCHED_BATCH: the fair class, where sched_runtime is the slice. */
const FAIR_POLICIES = new Set([0, 3]);

type Syscall = (nr: number, pid: number, attr: Uint8Array, size: number, flags: number) => number;
interface Native {
  call: Syscall;
  errno: () => number;
  nr: { set: number; get: number };
}
let native: Native | undefined;

/** libc's syscall() and errno through koffi, loaded on first use. */
function sys(): Native {
  if (native) return native;
  const nr = NR[process.arch];
  if (!nr) throw new Error(`sched-slice: no sched_setattr number for ${process.arch}`);
  const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
  // glibc's syscall() is variadic but only moves integer arguments into registers, so a fixed
  // prototype calls it the same way (src/bpf/syscall.ts does the same)
  const fn = koffi
    .load("libc.so.6")
    .func(
      "long syscall(long nr, long pid, _Inout_ uint8_t *attr, unsigned long size, unsigned long flags)",
    );
  native = { call: (a, b, c, d, e) => Number(fn(a, b, c, d, e)), errno: () => koffi.errno(), nr };
  return native;
}

/**
 * A task's slice in force, ns (the kernel reports the default, e.g. 1.4 ms here, for a task
 * without a custom one), or null when the task is gone or not in the fair class.
 */
export function getSliceNs(tid: number): number | null {
  const v = fairAttr(tid);
  return v === null ? null : Number(v.getBigUint64(OFF_RUNTIME, true));
}

/** A task's struct sched_attr (sched_getattr), or null when it is gone or not in the fair class. */
function fairAttr(tid: number): DataView | null {
  const { call, nr } = sys();
  const attr = new Uint8Array(ATTR_BYTES);
  if (call(nr.get, tid, attr, ATTR_BYTES, 0) !== 0) return null;
  const v = new DataView(attr.buffer);
  return FAIR_POLICIES.has(v.getUint32(OFF_POLICY, true)) ? v : null;
}

/**
 * Sets a fair-class task's slice (ns; 0 = the default), its policy, nice and the rest as they
 * were. False when the task is gone or not in the fair class; throws on any other refusal.
 */
export function setSliceNs(tid: number, ns: number): boolean {
  const v = fairAttr(tid);
  if (v === null) return false;
  v.setUint32(0, ATTR_BYTES, true);
  v.setBigUint64(OFF_FLAGS, 0n, true);
  v.setBigUint64(OFF_RUNTIME, BigInt(Math.round(ns)), true);
  const { call, errno, nr } = sys();
  if (call(nr.set, tid, new Uint8Array(v.buffer), 0, 0) === 0) return true;
  const e = errno();
  if (e === 3) return false; // ESRCH: gone meanwhile
  throw new Error(`sched_setattr(${tid}, slice ${ns} ns): errno ${e}`);
}

/**
 * Whether this kernel keeps a custom slice: set on the calling thread, read back, restored.
 * False on kernels before 6.12 (they accept sched_runtime for the fair class and ignore it).
 */
export function customSlicesWork(): boolean {
  const tid = process.pid; // the main thread's tid is the process's pid
  if (getSliceNs(tid) === null) return false;
  try {
    if (!setSliceNs(tid, 500_000)) return false;
    return getSliceNs(tid) === 500_000;
  } finally {
    setSliceNs(tid, 0);
  }
}

/**
 * The slice a task without a custom one gets here, ns: this process's main thread's (nothing
 * here gives it a custom slice but customSlicesWork, which gives it back the default).
 */
export const defaultSliceNs = (): number | null => getSliceNs(process.pid);

/** Every thread of the processes in `dirs` (their cgroup.procs; /proc/<pid>/task). */
function threadsOf(dirs: readonly string[]): number[] {
  const tids = new Set<number>();
  for (const pid of new Set(dirs.flatMap(cgroupProcs))) {
    try {
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) tids.add(Number(t));
    } catch {
      // gone meanwhile
    }
  }
  return [...tids];
}

/**
 * Sets `ns` on every thread of every process in `dirs` (one partition's cgroup dirs); returns
 * how many, and how to put each back: the default where it had the default slice (getattr
 * cannot tell a custom slice equal to the default from the default itself, so such a one is
 * given back as the default), else the custom slice it had.
 */
export function sliceCgroupTasks(
  dirs: readonly string[],
  ns: number,
): { tasks: number; undo: () => void } {
  const before: Array<[number, number]> = [];
  const base = defaultSliceNs();
  for (const tid of threadsOf(dirs)) {
    const read = getSliceNs(tid);
    if (read === null) continue;
    const was = read === base ? 0 : read;
    if (setSliceNs(tid, ns)) before.push([tid, was]);
  }
  return {
    tasks: before.length,
    undo: () => {
      for (const [tid, was] of before) setSliceNs(tid, was);
    },
  };
}
