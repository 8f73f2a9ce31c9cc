// Shared-memory slot table (docs/wire-formats.md, "Shared-memory slot table"): one file, a
// 64-byte header, two dense arrays of sequence locks (reports, directives), and one 256-byte
// slot per partition. In each slot the agent writes the report area and the manager the
// directive area, each under its own sequence lock (odd while writing). Readers copy the
// area between two reads of the lock and retry when it was odd or moved (torn).
//
// Two handles, two roles: an AgentSlot is opened on one slot index and can write only that
// slot's report area; a ManagerTable can write only directive areas. Neither exposes the raw
// mapping. (A process that maps the file itself can still scribble anywhere: what protects a
// partition's reports from another partition is the per-partition MAC inside each report.)
import { ErrorCodes, WeirError } from "../core/errors.ts";
import { DIRECTIVE_BYTES, REPORT_BYTES } from "./codec.ts";
import { type MappedFile, mapSharedFile } from "./mmap.ts";

/** "WSHM" in ASCII, read as u32 little-endian. */
export const SHM_MAGIC = 0x4d485357;
export const SHM_VERSION = 1;
export const SHM_HEADER_BYTES = 64;
export const SHM_SLOT_BYTES = 256;
/** Offsets inside a slot. */
export const SLOT_REPORT_AREA = 0;
export const SLOT_DIRECTIVE_AREA = 160;
export const MAX_SLOTS = 1 << 20;
/** Reads retried this many times before a slot read counts as torn (and is tried next scan). */
export const DEFAULT_READ_RETRIES = 8;

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/**
 * Where everything is in a table of `slotCount` slots. The sequence locks sit in two dense
 * arrays after the header (one u32 per slot each), so a scan for changes reads 4 bytes per
 * slot from a few contiguous pages instead of touching every slot's page.
 */
export interface TableLayout {
  slotCount: number;
  reportLocks: number;
  directiveLocks: number;
  slots: number;
  totalBytes: number;
}

export function tableLayout(slotCount: number): TableLayout {
  const reportLocks = SHM_HEADER_BYTES;
  const directiveLocks = reportLocks + align64(4 * slotCount);
  const slots = directiveLocks + align64(4 * slotCount);
  return {
    slotCount,
    reportLocks,
    directiveLocks,
    slots,
    totalBytes: slots + slotCount * SHM_SLOT_BYTES,
  };
}

export const tableBytes = (slotCount: number): number => tableLayout(slotCount).totalBytes;
/** Byte offsets of slot `i`'s parts. */
export const reportLockOffset = (l: TableLayout, i: number): number => l.reportLocks + 4 * i;
export const directiveLockOffset = (l: TableLayout, i: number): number => l.directiveLocks + 4 * i;
export const reportAreaOffset = (l: TableLayout, i: number): number =>
  l.slots + i * SHM_SLOT_BYTES + SLOT_REPORT_AREA;
export const directiveAreaOffset = (l: TableLayout, i: number): number =>
  l.slots + i * SHM_SLOT_BYTES + SLOT_DIRECTIVE_AREA;

function readHeader(buf: ArrayBuffer, path: string): TableLayout {
  const v = new DataView(buf, 0, SHM_HEADER_BYTES);
  const bad = (what: string) =>
    new WeirError(ErrorCodes.TRANSPORT, `shared-memory table ${path}: ${what}`);
  if (v.getUint32(0, true) !== SHM_MAGIC) throw bad("bad magic (not a weir slot table)");
  if (v.getUint16(4, true) !== SHM_VERSION)
    throw bad(`version ${v.getUint16(4, true)}, expected ${SHM_VERSION}`);
  if (v.getUint16(6, true) !== SHM_HEADER_BYTES) throw bad("unexpected header size");
  if (v.getUint32(8, true) !== SHM_SLOT_BYTES) throw bad("unexpected slot size");
  const slotCount = v.getUint32(12, true);
  if (slotCount < 1 || slotCount > MAX_SLOTS) throw bad(`slot count ${slotCount} out of range`);
  const l = tableLayout(slotCount);
  if (
    v.getUint32(24, true) !== l.reportLocks ||
    v.getUint32(28, true) !== l.directiveLocks ||
    v.getUint32(32, true) !== l.slots
  )
    throw bad("lock or slot offsets differ from this version's layout");
  return l;
}

function writeHeader(buf: ArrayBuffer, l: TableLayout, nowMs: number): void {
  const v = new DataView(buf, 0, SHM_HEADER_BYTES);
  v.setUint32(0, SHM_MAGIC, true);
  v.setUint16(4, SHM_VERSION, true);
  v.setUint16(6, SHM_HEADER_BYTES, true);
  v.setUint32(8, SHM_SLOT_BYTES, true);
  v.setUint32(12, l.slotCount, true);
  v.setUint32(16, nowMs % 2 ** 32, true);
  v.setUint32(20, Math.floor(nowMs / 2 ** 32), true);
  v.setUint32(24, l.reportLocks, true);
  v.setUint32(28, l.directiveLocks, true);
  v.setUint32(32, l.slots, true);
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
 * Seqlock read of `area` into `dst`. Returns the (even) lock value the copy is consistent
 * with, or -1 when every try saw the lock odd or moving.
 *
 * The lock is read with plain loads (Atomics.load on a non-shared buffer costs twice as much
 * here): the copy between them is a builtin call, so V8 cannot merge or move the two loads
 * across it, and x86 keeps loads in order. The writer's Atomics.store is the fence. Should a
 * torn copy ever get through on another architecture, the report's MAC still rejects it.
 */
function lockedRead(
  u32: Uint32Array,
  lock: number,
  area: Uint8Array,
  dst: Uint8Array,
  retries: number,
): number {
  for (let t = 0; t < retries; t++) {
    const s1 = u32[lock]!;
    if ((s1 & 1) === 1) continue;
    dst.set(area);
    if (u32[lock] === s1) return s1;
  }
  return -1;
}

class Guard {
  private mapped: MappedFile | null;
  private view: Uint32Array | null;
  readonly bytes: Uint8Array;
  constructor(mapped: MappedFile) {
    this.mapped = mapped;
    this.view = new Uint32Array(mapped.buffer);
    this.bytes = new Uint8Array(mapped.buffer);
  }
  /** The mapping as u32 words; throws once closed (the memory is gone then). */
  get u32(): Uint32Array {
    if (this.view === null) throw new WeirError(ErrorCodes.TRANSPORT, "slot table is closed");
    return this.view;
  }
  close(): void {
    this.view = null;
    this.mapped?.close();
    this.mapped = null;
  }
  get closed(): boolean {
    return this.view === null;
  }
}

export interface ManagerTableOptions {
  path: string;
  slotCount: number;
  now?: () => number;
  readRetries?: number;
}

/**
 * The manager's handle: creates the table (or reopens one with the same geometry, so agents
 * that already mapped it keep working across a manager restart), scans report areas and
 * writes directive areas.
 */
export class ManagerTable {
  readonly path: string;
  readonly slotCount: number;
  readonly layout: TableLayout;
  private readonly guard: Guard;
  private readonly lastSeen: Uint32Array;
  /** One view per slot's report area, made once (a scan then copies without allocating). */
  private readonly reportAreas: Uint8Array[];
  private readonly scratch = new Uint8Array(REPORT_BYTES);
  private readonly retries: number;

  constructor(opts: ManagerTableOptions) {
    if (!Number.isInteger(opts.slotCount) || opts.slotCount < 1 || opts.slotCount > MAX_SLOTS)
      throw new RangeError(`slotCount must be 1..${MAX_SLOTS}: current value is ${opts.slotCount}`);
    this.path = opts.path;
    this.slotCount = opts.slotCount;
    this.layout = tableLayout(opts.slotCount);
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    const mapped = mapSharedFile(opts.path, this.layout.totalBytes, { create: true });
    this.guard = new Guard(mapped);
    const header = new DataView(mapped.buffer, 0, SHM_HEADER_BYTES);
    if (header.getUint32(0, true) === 0) {
      writeHeader(mapped.buffer, this.layout, (opts.now ?? Date.now)());
    } else {
      let found: TableLayout;
      try {
        found = readHeader(mapped.buffer, opts.path);
      } catch (e) {
        this.guard.close();
        throw e;
      }
      if (found.slotCount !== opts.slotCount) {
        this.guard.close();
        throw new WeirError(
          ErrorCodes.TRANSPORT,
          `shared-memory table ${opts.path} has ${found.slotCount} slots, config asks for ${opts.slotCount}: remove the file or match the count`,
        );
      }
    }
    this.lastSeen = new Uint32Array(opts.slotCount);
    const bytes = this.guard.bytes;
    this.reportAreas = Array.from({ length: opts.slotCount }, (_, i) => {
      const at = reportAreaOffset(this.layout, i);
      return bytes.subarray(at, at + REPORT_BYTES);
    });
  }

  /**
   * Visit every slot whose report area changed since the last scan. `onReport` gets the
   * slot index and a consistent copy of the 136 report bytes (reused: copy to keep). A slot
   * whose lock stayed odd or kept moving through every retry is passed to `onTorn` and
   * read again next scan. Returns how many slots changed.
   */
  scan(
    onReport: (slot: number, report: Uint8Array) => void,
    onTorn?: (slot: number) => void,
  ): number {
    const u32 = this.guard.u32;
    const lastSeen = this.lastSeen;
    const lock0 = this.layout.reportLocks >>> 2;
    let changed = 0;
    for (let i = 0; i < this.slotCount; i++) {
      if (u32[lock0 + i] === lastSeen[i]) continue;
      const s = lockedRead(u32, lock0 + i, this.reportAreas[i]!, this.scratch, this.retries);
      if (s < 0) {
        onTorn?.(i);
        continue;
      }
      lastSeen[i] = s;
      changed++;
      onReport(i, this.scratch);
    }
    return changed;
  }

  /** Write a directive (80 encoded bytes) into slot `slot`'s directive area. */
  writeDirective(slot: number, directive: Uint8Array): void {
    checkSlot(slot, this.slotCount);
    if (directive.length !== DIRECTIVE_BYTES)
      throw new RangeError(`a directive is ${DIRECTIVE_BYTES} bytes: got ${directive.length}`);
    const u32 = this.guard.u32;
    const at = directiveAreaOffset(this.layout, slot);
    lockedWrite(
      u32,
      directiveLockOffset(this.layout, slot) >>> 2,
      this.guard.bytes.subarray(at, at + DIRECTIVE_BYTES),
      directive,
    );
  }

  close(): void {
    this.guard.close();
  }
}

export interface AgentSlotOptions {
  path: string;
  slot: number;
  readRetries?: number;
}

/**
 * An agent's handle on its own slot. The slot index is fixed at open; the handle can write
 * that slot's report area and read that slot's directive area, and nothing else.
 */
export class AgentSlot {
  readonly slot: number;
  private readonly guard: Guard;
  private readonly reportLock: number;
  private readonly reportArea: Uint8Array;
  private readonly directiveLock: number;
  private readonly directiveArea: Uint8Array;
  private readonly dir = new Uint8Array(DIRECTIVE_BYTES);
  private lastDirectiveLock = 0;
  private readonly retries: number;

  constructor(opts: AgentSlotOptions) {
    const head = mapSharedFile(opts.path, SHM_HEADER_BYTES, { create: false });
    let l: TableLayout;
    try {
      l = readHeader(head.buffer, opts.path);
    } finally {
      head.close();
    }
    checkSlot(opts.slot, l.slotCount);
    this.slot = opts.slot;
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    this.guard = new Guard(mapSharedFile(opts.path, l.totalBytes, { create: false }));
    this.reportLock = reportLockOffset(l, opts.slot) >>> 2;
    this.directiveLock = directiveLockOffset(l, opts.slot) >>> 2;
    const r = reportAreaOffset(l, opts.slot);
    const d = directiveAreaOffset(l, opts.slot);
    this.reportArea = this.guard.bytes.subarray(r, r + REPORT_BYTES);
    this.directiveArea = this.guard.bytes.subarray(d, d + DIRECTIVE_BYTES);
  }

  /** Publish a report (136 encoded bytes) in this slot's report area. */
  writeReport(report: Uint8Array): void {
    if (report.length !== REPORT_BYTES)
      throw new RangeError(`a report is ${REPORT_BYTES} bytes: got ${report.length}`);
    lockedWrite(this.guard.u32, this.reportLock, this.reportArea, report);
  }

  /**
   * The directive area's bytes if it changed since the last call (a copy), else null.
   * Torn reads are retried; after `readRetries` failures this returns null and the next
   * call tries again.
   */
  readDirective(): Uint8Array | null {
    const u32 = this.guard.u32;
    if (Atomics.load(u32, this.directiveLock) === this.lastDirectiveLock) return null;
    const s = lockedRead(u32, this.directiveLock, this.directiveArea, this.dir, this.retries);
    if (s < 0) return null;
    this.lastDirectiveLock = s;
    return this.dir.slice();
  }

  close(): void {
    this.guard.close();
  }
}

function checkSlot(slot: number, slotCount: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount)
    throw new WeirError(
      ErrorCodes.TRANSPORT,
      `slot ${slot} is outside the table (0..${slotCount - 1})`,
    );
}
