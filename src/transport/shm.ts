// Shared-memory slot table (docs/wire-formats.md, "Slot table"): one file, a 64-byte header,
// one 256-byte slot per partition. In each slot the agent writes the report area and the
// manager the directive area, each under its own sequence lock (odd while writing). Readers
// copy the area between two reads of the lock and retry when it was odd or moved (torn).
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
export const SLOT_REPORT_LOCK = 0;
export const SLOT_REPORT_AREA = 8;
export const SLOT_DIRECTIVE_LOCK = 160;
export const SLOT_DIRECTIVE_AREA = 168;
export const MAX_SLOTS = 1 << 20;
/** Reads retried this many times before a slot read counts as torn (and is tried next scan). */
export const DEFAULT_READ_RETRIES = 8;

const REPORT_WORDS = REPORT_BYTES / 4;
const DIRECTIVE_WORDS = DIRECTIVE_BYTES / 4;

export const tableBytes = (slotCount: number): number =>
  SHM_HEADER_BYTES + slotCount * SHM_SLOT_BYTES;

/** Byte offset of slot `i` in the file. */
export const slotOffset = (i: number): number => SHM_HEADER_BYTES + i * SHM_SLOT_BYTES;

interface Geometry {
  slotCount: number;
}

function readHeader(buf: ArrayBuffer, path: string): Geometry {
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
  return { slotCount };
}

function writeHeader(buf: ArrayBuffer, slotCount: number, nowMs: number): void {
  const v = new DataView(buf, 0, SHM_HEADER_BYTES);
  v.setUint32(0, SHM_MAGIC, true);
  v.setUint16(4, SHM_VERSION, true);
  v.setUint16(6, SHM_HEADER_BYTES, true);
  v.setUint32(8, SHM_SLOT_BYTES, true);
  v.setUint32(12, slotCount, true);
  v.setUint32(16, nowMs % 2 ** 32, true);
  v.setUint32(20, Math.floor(nowMs / 2 ** 32), true);
}

/** Seqlock write of `words` u32 words at word index `at`, lock at word index `lock`. */
function lockedWrite(u32: Uint32Array, lock: number, at: number, src: Uint32Array): void {
  const s = Atomics.load(u32, lock);
  const odd = (s & 1) === 1 ? s : (s + 1) >>> 0;
  Atomics.store(u32, lock, odd);
  for (let w = 0; w < src.length; w++) u32[at + w] = src[w]!;
  Atomics.store(u32, lock, (odd + 1) >>> 0);
}

/**
 * Seqlock read into `dst`. Returns the (even) lock value the copy is consistent with, or -1
 * when every try saw the lock odd or moving.
 */
function lockedRead(
  u32: Uint32Array,
  lock: number,
  at: number,
  dst: Uint32Array,
  retries: number,
): number {
  for (let t = 0; t < retries; t++) {
    const s1 = Atomics.load(u32, lock);
    if ((s1 & 1) === 1) continue;
    for (let w = 0; w < dst.length; w++) dst[w] = u32[at + w]!;
    if (Atomics.load(u32, lock) === s1) return s1;
  }
  return -1;
}

class Guard {
  private mapped: MappedFile | null;
  private view: Uint32Array | null;
  constructor(mapped: MappedFile) {
    this.mapped = mapped;
    this.view = new Uint32Array(mapped.buffer);
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
  private readonly guard: Guard;
  private readonly lastSeen: Uint32Array;
  private readonly scratch32 = new Uint32Array(REPORT_WORDS);
  /** The bytes of the last report read by scan() (valid during the callback only). */
  private readonly scratch8 = new Uint8Array(this.scratch32.buffer);
  private readonly dirScratch32 = new Uint32Array(DIRECTIVE_WORDS);
  private readonly dirScratch8 = new Uint8Array(this.dirScratch32.buffer);
  private readonly retries: number;

  constructor(opts: ManagerTableOptions) {
    if (!Number.isInteger(opts.slotCount) || opts.slotCount < 1 || opts.slotCount > MAX_SLOTS)
      throw new RangeError(`slotCount must be 1..${MAX_SLOTS}: current value is ${opts.slotCount}`);
    this.path = opts.path;
    this.slotCount = opts.slotCount;
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    const mapped = mapSharedFile(opts.path, tableBytes(opts.slotCount), { create: true });
    this.guard = new Guard(mapped);
    const header = new DataView(mapped.buffer, 0, SHM_HEADER_BYTES);
    if (header.getUint32(0, true) === 0) {
      writeHeader(mapped.buffer, opts.slotCount, (opts.now ?? Date.now)());
    } else {
      let g: Geometry;
      try {
        g = readHeader(mapped.buffer, opts.path);
      } catch (e) {
        this.guard.close();
        throw e;
      }
      if (g.slotCount !== opts.slotCount) {
        this.guard.close();
        throw new WeirError(
          ErrorCodes.TRANSPORT,
          `shared-memory table ${opts.path} has ${g.slotCount} slots, config asks for ${opts.slotCount}: remove the file or match the count`,
        );
      }
    }
    this.lastSeen = new Uint32Array(opts.slotCount);
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
    let changed = 0;
    for (let i = 0; i < this.slotCount; i++) {
      const lock = (SHM_HEADER_BYTES + i * SHM_SLOT_BYTES + SLOT_REPORT_LOCK) >>> 2;
      if (u32[lock] === lastSeen[i]) continue;
      const s = lockedRead(
        u32,
        lock,
        lock + (SLOT_REPORT_AREA >>> 2),
        this.scratch32,
        this.retries,
      );
      if (s < 0) {
        onTorn?.(i);
        continue;
      }
      lastSeen[i] = s;
      changed++;
      onReport(i, this.scratch8);
    }
    return changed;
  }

  /** Write a directive (80 encoded bytes) into slot `slot`'s directive area. */
  writeDirective(slot: number, directive: Uint8Array): void {
    checkSlot(slot, this.slotCount);
    if (directive.length !== DIRECTIVE_BYTES)
      throw new RangeError(`a directive is ${DIRECTIVE_BYTES} bytes: got ${directive.length}`);
    const u32 = this.guard.u32;
    this.dirScratch8.set(directive);
    const lock = (slotOffset(slot) + SLOT_DIRECTIVE_LOCK) >>> 2;
    lockedWrite(u32, lock, (slotOffset(slot) + SLOT_DIRECTIVE_AREA) >>> 2, this.dirScratch32);
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
  private readonly reportAt: number;
  private readonly directiveLock: number;
  private readonly directiveAt: number;
  private readonly scratch32 = new Uint32Array(REPORT_WORDS);
  private readonly scratch8 = new Uint8Array(this.scratch32.buffer);
  private readonly dir32 = new Uint32Array(DIRECTIVE_WORDS);
  private readonly dir8 = new Uint8Array(this.dir32.buffer);
  private lastDirectiveLock = 0;
  private readonly retries: number;

  constructor(opts: AgentSlotOptions) {
    const head = mapSharedFile(opts.path, SHM_HEADER_BYTES, { create: false });
    let g: Geometry;
    try {
      g = readHeader(head.buffer, opts.path);
    } finally {
      head.close();
    }
    checkSlot(opts.slot, g.slotCount);
    this.slot = opts.slot;
    this.retries = opts.readRetries ?? DEFAULT_READ_RETRIES;
    this.guard = new Guard(mapSharedFile(opts.path, tableBytes(g.slotCount), { create: false }));
    const base = slotOffset(opts.slot);
    this.reportLock = (base + SLOT_REPORT_LOCK) >>> 2;
    this.reportAt = (base + SLOT_REPORT_AREA) >>> 2;
    this.directiveLock = (base + SLOT_DIRECTIVE_LOCK) >>> 2;
    this.directiveAt = (base + SLOT_DIRECTIVE_AREA) >>> 2;
  }

  /** Publish a report (136 encoded bytes) in this slot's report area. */
  writeReport(report: Uint8Array): void {
    if (report.length !== REPORT_BYTES)
      throw new RangeError(`a report is ${REPORT_BYTES} bytes: got ${report.length}`);
    this.scratch8.set(report);
    lockedWrite(this.guard.u32, this.reportLock, this.reportAt, this.scratch32);
  }

  /**
   * The directive area's bytes if it changed since the last call (a copy), else null.
   * Torn reads are retried; after `readRetries` failures this returns null and the next
   * call tries again.
   */
  readDirective(): Uint8Array | null {
    const u32 = this.guard.u32;
    if (Atomics.load(u32, this.directiveLock) === this.lastDirectiveLock) return null;
    const s = lockedRead(u32, this.directiveLock, this.directiveAt, this.dir32, this.retries);
    if (s < 0) return null;
    this.lastDirectiveLock = s;
    return this.dir8.slice();
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
