// Per-cgroup packet and byte counters in the kernel: one per-CPU array map and two
// BPF_PROG_TYPE_CGROUP_SKB programs (programs.ts) attached with BPF_F_ALLOW_MULTI at the
// cgroup v2 directory's inet ingress and egress hooks. Optionally pinned in bpffs so a
// restarted weir finds the same map and programs (and the counts they kept meanwhile), with a
// record of the cgroup they are attached to, so that a partition whose cgroup changed takes
// them off the old one. The bpf(2) commands themselves are in objects.ts.
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import {
  ATTACHED_RECORD_BYTES,
  attachCall,
  closeFd,
  createAttachedRecordMap,
  createMap,
  fail,
  loadCgroupSkbProgram,
  lookupFirst,
  openCgroupDir,
  pinnedObject,
  pinObject,
  programId,
  queryAttached,
  updateFirst,
} from "./objects.ts";
import {
  COUNTERS_VALUE_BYTES,
  countingProgram,
  EGRESS_PACKETS_OFFSET,
  INGRESS_PACKETS_OFFSET,
} from "./programs.ts";
import {
  BPF_CGROUP_INET_EGRESS,
  BPF_CGROUP_INET_INGRESS,
  BPF_MAP_LOOKUP_ELEM,
  BPF_PROG_ATTACH,
  BPF_PROG_DETACH,
  BpfSyscallError,
  bpf,
  errnoName,
  freeNative,
  type NativeBuffer,
  nativeBuffer,
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

/**
 * What is pinned in a partition's pin directory. `attached` records the cgroup v2 directory
 * the programs are attached to (a one-entry array map, its value the path NUL-padded), written
 * when they are pinned and whenever a later opening attaches them elsewhere. Pins made by a
 * weir before it (the other three alone) are taken up too, their cgroup unknown.
 */
const PIN_NAMES = {
  map: "counters",
  ingress: "ingress",
  egress: "egress",
  attached: "attached",
} as const;

const HOOKS = [
  ["ingress", BPF_CGROUP_INET_INGRESS],
  ["egress", BPF_CGROUP_INET_EGRESS],
] as const;

/** The record's value: the path's bytes, NUL-padded to ATTACHED_RECORD_BYTES. */
function encodeRecord(cgroupDir: string): Uint8Array {
  const bytes = new Uint8Array(ATTACHED_RECORD_BYTES);
  const enc = new TextEncoder().encode(cgroupDir);
  // open() took the path, so it is shorter than PATH_MAX; one too long is recorded as unknown
  if (enc.length < ATTACHED_RECORD_BYTES) bytes.set(enc);
  return bytes;
}

/** The path in a record's value; null when empty (unknown). */
function decodeRecord(bytes: Uint8Array): string | null {
  const end = bytes.indexOf(0);
  const s = new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
  return s === "" ? null : s;
}

/**
 * Detach programs from a cgroup v2 directory weir no longer counts. Its directory gone: the
 * kernel dropped its programs with it (nothing to do). Not attached there: nothing to undo.
 */
function detachFrom(cgroupDir: string, progFds: { ingress: number; egress: number }): void {
  let fd: number;
  try {
    fd = fs.openSync(cgroupDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    for (const [hook, type] of HOOKS)
      try {
        attachCall(BPF_PROG_DETACH, fd, progFds[hook], type, "BPF_PROG_DETACH");
      } catch {
        // not attached there (someone detached it)
      }
  } finally {
    closeFd(fd);
  }
}

/** The bpffs mount a pin directory `<bpffs>/weir/<partition>` needs: its grandparent. */
const mountAdvice = (pinDir: string): string => {
  const bpffs = path.dirname(path.dirname(pinDir));
  return `mount the bpf filesystem at ${bpffs} (mount -t bpf bpf ${bpffs}), or set pin: false`;
};

/**
 * Make a partition's pin directory (`<bpffs>/weir/<partition>`, mode 0700), one missing level
 * at a time. Not `mkdirSync(…, {recursive: true})`: Node's recursive mkdir retries forever,
 * blocking the event loop (and so SIGTERM), where mkdir answers ENOENT under a directory that
 * exists — as sysfs's /sys/fs/bpf does when no bpf filesystem is mounted on it. Throws
 * BPF_UNAVAILABLE naming the partition, the directory, the errno and the mount to make.
 */
export function makePinDir(partition: string, pinDir: string): void {
  const missing: string[] = [];
  for (let d = pinDir; !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing)
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue;
      throw new WeirError(
        ErrorCodes.BPF_UNAVAILABLE,
        `partition ${partition}: making its pin directory ${d} failed (${code ?? (e as Error).message}): ${mountAdvice(pinDir)}`,
        { cause: e },
      );
    }
}

export class CgroupSkbCounters {
  private readonly o: CgroupSkbCountersOptions;
  private readonly cgroupFd: number;
  private readonly mapFd: number;
  private readonly progFds: { ingress: number; egress: number };
  /** Whether this opening found its objects pinned by an earlier one (a restart). */
  readonly resumed: boolean;
  /**
   * The cgroup v2 directory the pinned programs were recorded as attached to when it is not
   * `cgroupDir` (the partition's cgroup changed between runs): they have been detached from
   * it. Null otherwise.
   */
  readonly movedFrom: string | null = null;
  /**
   * The pins taken up carried no record of their cgroup (pinned by a weir before the record):
   * if the partition's cgroup changed meanwhile, the programs are still attached to the old one
   * too, and only removing that cgroup or `bpftool cgroup detach` takes them off. Recorded from
   * this opening on.
   */
  readonly unrecorded: boolean = false;
  /** The record's fd (-1: none, unpinned counters). */
  private readonly recordFd: number = -1;
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
      const pinDir = o.pinDir;
      const pins =
        pinDir === null
          ? null
          : {
              map: path.join(pinDir, PIN_NAMES.map),
              ingress: path.join(pinDir, PIN_NAMES.ingress),
              egress: path.join(pinDir, PIN_NAMES.egress),
              attached: path.join(pinDir, PIN_NAMES.attached),
            };
      const here = path.resolve(o.cgroupDir);
      /** The cgroup the pinned programs are recorded as attached to; null: unknown. */
      let recorded: string | null = null;
      /** A record map saying the programs are attached here (its fd, closed with the rest on a failure). */
      const newRecord = (): number => {
        const fd = createAttachedRecordMap(o);
        fds.push(fd);
        updateFirst(fd, encodeRecord(here));
        return fd;
      };
      this.resumed =
        pins !== null && [pins.map, pins.ingress, pins.egress].every((f) => fs.existsSync(f));
      if (pins !== null && this.resumed) {
        try {
          this.mapFd = pinnedObject(pins.map);
          fds.push(this.mapFd);
          this.progFds = { ingress: pinnedObject(pins.ingress), egress: pinnedObject(pins.egress) };
          fds.push(this.progFds.ingress, this.progFds.egress);
          if (fs.existsSync(pins.attached)) {
            this.recordFd = pinnedObject(pins.attached);
            fds.push(this.recordFd);
            recorded = decodeRecord(lookupFirst(this.recordFd, ATTACHED_RECORD_BYTES));
          }
        } catch (e) {
          fail(o, `opening the objects pinned under ${pinDir}`, e);
        }
        this.unrecorded = recorded === null;
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
      // a move: attached here first, then taken off the recorded cgroup, then recorded here,
      // so a crash between the steps leaves them on this cgroup and at most the recorded one,
      // which the next opening takes them off
      for (const [hook, type] of HOOKS) {
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
      if (pins !== null && this.resumed && recorded !== here) {
        // the partition's cgroup changed (or the pins carry no record): the programs count
        // here now, and no more where they were (a gone cgroup took its attachments with it)
        if (recorded !== null) {
          detachFrom(recorded, this.progFds);
          this.movedFrom = recorded;
        }
        try {
          if (this.recordFd < 0) {
            this.recordFd = newRecord();
            pinObject(this.recordFd, pins.attached);
          } else updateFirst(this.recordFd, encodeRecord(here));
        } catch (e) {
          fail(o, `recording under ${pinDir} that its programs are attached to ${here}`, e);
        }
      }
      if (pins !== null && o.pin && !this.resumed) {
        const made: string[] = [];
        try {
          makePinDir(o.partition, pinDir!);
          // a record left without the objects it described (removed by hand) describes nothing
          fs.rmSync(pins.attached, { force: true });
          this.recordFd = newRecord();
          // the record last: a record pinned says the other three are
          for (const [fd, file] of [
            [this.mapFd, pins.map],
            [this.progFds.ingress, pins.ingress],
            [this.progFds.egress, pins.egress],
            [this.recordFd, pins.attached],
          ] as const) {
            pinObject(fd, file);
            made.push(file);
          }
        } catch (e) {
          this.detach();
          for (const file of made) fs.rmSync(file, { force: true });
          if (e instanceof BpfSyscallError)
            throw new WeirError(
              ErrorCodes.BPF_UNAVAILABLE,
              `partition ${o.partition}: pinning its counters under ${pinDir} failed (${errnoName(e.errno)}): ${mountAdvice(pinDir!)}`,
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
    for (const [hook, type] of HOOKS) {
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
   * with the last fd); pins taken up from another cgroup were detached from it at opening
   * (`movedFrom`).
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
    if (this.recordFd >= 0) closeFd(this.recordFd);
    for (const b of [this.lookupAttr, this.key, this.value]) freeNative(b);
  }
}
