// Shared-memory slots (docs/wire-formats.md, "Shared-memory slots"): one page per partition,
// each its own sealed memfd. In each slot the agent writes the report area and the manager the
// directive area, each under its own sequence lock (odd while writing).
//
// Isolation is the kernel's: an agent opens only its own slot (by its entry in the manager's
// 0700 directory, or an fd it was handed) and maps one page, so nothing it can address holds
// another partition's slot. The manager maps every slot side by side in one reserved range
// (mmap.ts) and scans them as one buffer. Each memfd's size is sealed, so a slot cannot be
// truncated under the manager's mapping (no SIGBUS); an agent that scribbles on its page or
// holds its lock odd costs only its own slot (bounded retries, counted as torn or rejected).
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { DIRECTIVE_BYTES, REPORT_BYTES } from "./codec.ts";
import { type MappedFile, MappedRegion, mapFd, PAGE_BYTES, sealedMemfd } from "./mmap.ts";

/** "WSLT" in ASCII, read as u32 little-endian. */
export const SLOT_MAGIC = 0x544c5357;
export const SLOT_VERSION = 2;
export const SLOT_HEADER_BYTES = 64;
/** One slot is one page. */
export const SLOT_BYTES = PAGE_BYTES;
/** Byte offsets inside a slot. */
export const SLOT_REPORT_LOCK = 64;
export const SLOT_REPORT_AREA = 72;
export const SLOT_DIRECTIVE_LOCK = 256;
export const SLOT_DIRECTIVE_AREA = 264;
/** Largest partition index a slot may carry (the wire's index is a u32; the config's 65,535). */
export const MAX_SLOT_INDEX = 0xffffffff;
/** Reads retried this many times before a slot read counts as torn (and is tried next scan). */
export const DEFAULT_READ_RETRIES = 8;

/** The entry of partition `index` in the manager's slot directory. */
export const slotPath = (dir: string, index: number): string => join(dir, String(index));

function writeSlotHeader(view: DataView, at: number, index: number, nowMs: number): void {
  view.setUint32(at, SLOT_MAGIC, true);
  view.setUint16(at + 4, SLOT_VERSION, true);
  view.setUint16(at + 6, SLOT_HEADER_BYTES, true);
  view.setUint32(at + 8, index, true);
  view.setUint32(at + 12, SLOT_BYTES, true);
  view.setUint32(at + 16, nowMs % 2 ** 32, true);
  view.setUint32(at + 20, Math.floor(nowMs / 2 ** 32), true);
}

/** Seqlock write: lock odd, copy, lock even (a lock left odd by a dead writer stays odd first). */
function lockedWrite(u32: Uint32Array, lock: number, area: Uint8Array, src: Uint8Array): void {
  const s = Atomics.load(u32, lock);
  const odd = (s & 1) === 1 ? s : (s + 1) >>> 0;
  Atomics.store(u32, lock, odd);
  area.set(src);
  Atomics.store(u32, lock, (odd + 1) >>> 0);
}

/**
 * The directory the manager publishes slot entries in: created 0700 when missing; when it
 * exists it must be a real directory (not a symlink) owned by this process's user and closed
 * to group and others, else an error names the path, the rule and what was found.
 */
export function ensureSlotDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST")
      throw new WeirError(ErrorCodes.TRANSPORT, `cannot create shared-memory directory ${dir}`, {
        cause: e,
      });
  }
  const st = lstatSync(dir);
  const bad = (rule: string, got: string) =>
    new WeirError(
      ErrorCodes.TRANSPORT,
      `shared-memory directory ${dir}: ${rule} (rule: slot-directory): got ${got}`,
    );
  if (!st.isDirectory())
    throw bad(
      "must be a directory, not a symlink or file",
      st.isSymbolicLink() ? "a symlink" : "a file",
    );
  const uid = process.geteuid?.() ?? st.uid;
  if (st.uid !== uid) throw bad(`must be owned by uid ${uid}`, `uid ${st.uid}`);
  if ((st.mode & 0o077) !== 0)
    throw bad(
      "must not be open to group or others (mode 0700)",
      `mode 0${(st.mode & 0o777).toString(8)}`,
    );
}

export interface ManagerSlotsOptions {
  /** Directory for the slot entries (e.g. /dev/shm/weir-slots); see ensureSlotDirectory. */
  dir: string;
  /** Partition indexes, one slot each. */
  indexes: readonly number[];
  now?: () => number;
  readRetries?: number;
}

/**
 * The manager's side: makes one sealed one-page memfd per partition, maps them side by side,
 * publishes each as `<dir>/<index>` (a symlink to /proc/<pid>/fd/<fd>, so a process allowed
 * to reach it opens that very memfd), scans report areas and writes directive areas.
 */
export class ManagerSlots {
  readonly dir: string;
  readonly indexes: readonly number[];
  private readonly region: MappedRegion;
  private readonly u32: Uint32Array;
  private readonly bytes: Uint8Array;
  private readonly fds: number[] = [];
  private readonly links: Array<[path: string, target: string]> = [];
  private readonly position = new Map<number, number>();
  private readonly lastSeen: Uint32Array;
  private readonly retries: number;
  private closed = false;

  constructor(opts: ManagerSlotsOptions) {
    const count = opts.indexes.length;
    if (count < 1) throw new RangeError("at least one partition index is needed");
    for (const i of opts.indexes) {
      if (!Number.isInteger(i) || i < 0 || i > MAX_SLOT_INDEX)
        throw new RangeError(`partition index must be a u32: current value is ${i}`);
      if (this.position.has(i)) throw new RangeError(`partition index ${i} used twice`);
      this.position.set(i, this.position.size);
    }
    this.dir = opts.dir;
    this.indexes = [...opts.indexes];
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    ensureSlotDirectory(opts.dir);
    this.region = new MappedRegion(count);
    try {
      const view = new DataView(this.region.buffer);
      const nowMs = (opts.now ?? Date.now)();
      for (const [k, index] of this.indexes.entries()) {
        const fd = sealedMemfd(`weir-slot-${index}`, SLOT_BYTES);
        this.fds.push(fd);
        this.region.mapPage(k, fd);
        writeSlotHeader(view, k * SLOT_BYTES, index, nowMs);
        this.publish(index, fd);
      }
    } catch (e) {
      this.close();
      throw e;
    }
    this.u32 = new Uint32Array(this.region.buffer);
    this.bytes = new Uint8Array(this.region.buffer);
    this.lastSeen = new Uint32Array(count);
  }

  /** Replace `<dir>/<index>` atomically with a link to this process's fd. */
  private publish(index: number, fd: number): void {
    const path = slotPath(this.dir, index);
    const target = `/proc/${process.pid}/fd/${fd}`;
    const tmp = join(this.dir, `.${index}.${process.pid}.tmp`);
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    renameSync(tmp, path);
    this.links.push([path, target]);
  }

  private guard(): void {
    if (this.closed) throw new WeirError(ErrorCodes.TRANSPORT, "shared-memory slots are closed");
  }

  /**
   * Visit every slot whose report lock moved since the last scan. `read(index, bytes, at)`
   * gets the whole mapping and the offset of the slot's 136-byte report area in it
   * (REPORT_BYTES at `at`; no copy, and no view per slot: loading 10,000 kept views was about
   * a quarter of an all-changed scan) and returns what it made of it; only computation, no
   * lasting effect, belongs there. The lock is read again
   * afterwards: when it did not move, the area did not change while `read` ran and
   * `commit(index, result)` is called once; else `read` runs again, at most `readRetries`
   * times (a lock held odd is not read at all), and then `onTorn(index)` is called and the
   * slot is tried again next scan. Returns how many slots were committed.
   */
  scan<T>(
    read: (index: number, bytes: Uint8Array, at: number) => T,
    commit: (index: number, result: T) => void,
    onTorn?: (index: number) => void,
  ): number {
    this.guard();
    const u32 = this.u32;
    const lastSeen = this.lastSeen;
    const indexes = this.indexes;
    const bytes = this.bytes;
    const retries = this.retries;
    const n = indexes.length;
    let changed = 0;
    for (let k = 0; k < n; k++) {
      const lock = (k * SLOT_BYTES + SLOT_REPORT_LOCK) >>> 2;
      let s1 = u32[lock]!;
      if (s1 === lastSeen[k]) continue;
      const index = indexes[k]!;
      let done = false;
      // Plain loads around `read`: V8 does not move loads of a typed array across a call it
      // cannot prove harmless, and x86 keeps loads in order; the writer's Atomics.store is the
      // fence. Should a torn area ever pass on another architecture, the report's MAC still
      // rejects it. The first try reads the lock once (the load that found it moved).
      for (let t = 0; t < retries; t++) {
        if (t > 0) s1 = u32[lock]!;
        if ((s1 & 1) === 1) continue;
        const r = read(index, bytes, k * SLOT_BYTES + SLOT_REPORT_AREA);
        if (u32[lock] !== s1) continue;
        lastSeen[k] = s1;
        commit(index, r);
        changed++;
        done = true;
        break;
      }
      if (!done) onTorn?.(index);
    }
    return changed;
  }

  /** Write a directive (80 encoded bytes) into partition `index`'s directive area. */
  writeDirective(index: number, directive: Uint8Array): void {
    this.guard();
    const k = this.position.get(index);
    if (k === undefined)
      throw new WeirError(ErrorCodes.TRANSPORT, `no shared-memory slot for partition ${index}`);
    if (directive.length !== DIRECTIVE_BYTES)
      throw new RangeError(`a directive is ${DIRECTIVE_BYTES} bytes: got ${directive.length}`);
    const at = k * SLOT_BYTES + SLOT_DIRECTIVE_AREA;
    lockedWrite(
      this.u32,
      (k * SLOT_BYTES + SLOT_DIRECTIVE_LOCK) >>> 2,
      this.bytes.subarray(at, at + DIRECTIVE_BYTES),
      directive,
    );
  }

  /** Unmap, close the memfds and remove the entries this manager published (if still its own). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [path, target] of this.links.splice(0)) {
      try {
        if (readlinkSync(path) === target) rmSync(path, { force: true });
      } catch {
        // gone or replaced: not ours to remove
      }
    }
    this.region.close();
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}

export interface AgentSlotOptions {
  /** The manager's slot directory (the slot is `<dir>/<slot>`), or the slot file itself. */
  path: string;
  slot: number;
  readRetries?: number;
}

/** Where an agent's slot is: `path` itself unless it is a directory. */
export function agentSlotFile(path: string, slot: number): string {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    // a missing path is reported when it is opened
  }
  return dir ? slotPath(path, slot) : path;
}

/**
 * An agent's handle on its own slot: one page mapped, so it can write that slot's report
 * area and read that slot's directive area, and address nothing else.
 */
export class AgentSlot {
  readonly slot: number;
  readonly file: string;
  private readonly mapped: MappedFile;
  private readonly u32: Uint32Array;
  private readonly reportArea: Uint8Array;
  private readonly directiveArea: Uint8Array;
  private readonly dir = new Uint8Array(DIRECTIVE_BYTES);
  private readonly identity: string;
  private lastDirectiveLock = 0;
  private readonly retries: number;
  private closed = false;

  constructor(opts: AgentSlotOptions) {
    if (!Number.isInteger(opts.slot) || opts.slot < 0 || opts.slot > MAX_SLOT_INDEX)
      throw new WeirError(ErrorCodes.TRANSPORT, `slot ${opts.slot} is not a partition index`);
    this.slot = opts.slot;
    this.file = agentSlotFile(opts.path, opts.slot);
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    let fd: number;
    try {
      fd = openSync(this.file, "r+");
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? "error";
      throw new WeirError(
        ErrorCodes.TRANSPORT,
        `cannot open shared-memory slot ${this.file} (${code}; is the manager running with this partition?)`,
        { cause },
      );
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size !== SLOT_BYTES)
        throw new WeirError(
          ErrorCodes.TRANSPORT,
          `shared-memory slot ${this.file} holds ${st.size} bytes, expected ${SLOT_BYTES}`,
        );
      this.identity = `${st.dev}:${st.ino}`;
      this.mapped = mapFd(fd, SLOT_BYTES, this.file);
    } finally {
      closeSync(fd);
    }
    const v = new DataView(this.mapped.buffer);
    const bad = (what: string) => {
      this.mapped.close();
      return new WeirError(ErrorCodes.TRANSPORT, `shared-memory slot ${this.file}: ${what}`);
    };
    if (v.getUint32(0, true) !== SLOT_MAGIC) throw bad("bad magic (not a weir slot)");
    if (v.getUint16(4, true) !== SLOT_VERSION)
      throw bad(`version ${v.getUint16(4, true)}, expected ${SLOT_VERSION}`);
    if (v.getUint32(8, true) !== opts.slot)
      throw bad(`belongs to partition ${v.getUint32(8, true)}, not ${opts.slot}`);
    this.u32 = new Uint32Array(this.mapped.buffer);
    const bytes = new Uint8Array(this.mapped.buffer);
    this.reportArea = bytes.subarray(SLOT_REPORT_AREA, SLOT_REPORT_AREA + REPORT_BYTES);
    this.directiveArea = bytes.subarray(SLOT_DIRECTIVE_AREA, SLOT_DIRECTIVE_AREA + DIRECTIVE_BYTES);
  }

  private words(): Uint32Array {
    if (this.closed) throw new WeirError(ErrorCodes.TRANSPORT, "shared-memory slot is closed");
    return this.u32;
  }

  /** Publish a report (136 encoded bytes) in this slot's report area. */
  writeReport(report: Uint8Array): void {
    if (report.length !== REPORT_BYTES)
      throw new RangeError(`a report is ${REPORT_BYTES} bytes: got ${report.length}`);
    lockedWrite(this.words(), SLOT_REPORT_LOCK >>> 2, this.reportArea, report);
  }

  /**
   * The directive area's bytes if it changed since the last call (a copy), else null.
   * Torn reads are retried; after `readRetries` failures this returns null and the next
   * call tries again.
   */
  readDirective(): Uint8Array | null {
    const u32 = this.words();
    const lock = SLOT_DIRECTIVE_LOCK >>> 2;
    if (Atomics.load(u32, lock) === this.lastDirectiveLock) return null;
    for (let t = 0; t < this.retries; t++) {
      const s1 = Atomics.load(u32, lock);
      if ((s1 & 1) === 1) continue;
      this.dir.set(this.directiveArea);
      if (Atomics.load(u32, lock) !== s1) continue;
      this.lastDirectiveLock = s1;
      return this.dir.slice();
    }
    return null;
  }

  /**
   * Whether the slot's path now names another file than the one mapped (the manager
   * restarted and made new slots) or nothing at all. One stat call.
   */
  moved(): boolean {
    try {
      const st = statSync(this.file);
      return `${st.dev}:${st.ino}` !== this.identity;
    } catch {
      return true;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mapped.close();
  }
}
