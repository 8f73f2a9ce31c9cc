// Wire formats of agent reports and manager directives (docs/wire-formats.md, byte by byte).
//
// Fixed size, little-endian, versioned, HMAC-SHA256 over every byte before the MAC with a
// per-partition key. The same bytes travel in a UDP datagram and in a shared-memory slot.
// Verification checks, in this order: size, magic, version, type, length field, partition,
// MAC (timing-safe), content, sequence (strictly increasing per partition within a sender's
// run: replay), delay (stale). The first failing check names the rejection reason. No check
// compares the sender's clock with the receiver's: see Verifier.
//
// Longer than 400 lines on purpose: the encoders and the verifier are the two halves of one
// byte layout (every offset appears in both), and the wire-doc test checks them together.
import { stepFreeNowMs } from "../core/clock.ts";
import type { PartitionId } from "../core/model.ts";
import { isMacKey, type MacKey, macKey } from "./mac.ts";

/** Bytes 0..3 of every message: "WEIR" in ASCII (0x52494557 read as u32 little-endian). */
export const WIRE_MAGIC = 0x52494557;
export const WIRE_VERSION = 1;
export const MESSAGE_TYPE_REPORT = 1;
export const MESSAGE_TYPE_DIRECTIVE = 2;
export const HEADER_BYTES = 32;
export const MAC_BYTES = 32;
export const REPORT_BYTES = 136;
export const DIRECTIVE_BYTES = 80;
/** Largest message of this version; anything longer is rejected as oversized before parsing. */
export const MAX_MESSAGE_BYTES = REPORT_BYTES;
/** Shortest prefix that can be classified (magic, version, type, length). */
export const MIN_CLASSIFIABLE_BYTES = 8;
/** Keys shorter than this are refused when a key ring is built. */
export const MIN_KEY_BYTES = 16;

/** Largest integer a u64 field may carry (JavaScript numbers are exact up to 2^53 - 1). */
const MAX_SAFE_HI = 0x1fffff;
const TWO_32 = 2 ** 32;

export const REJECT_REASONS = [
  "forged",
  "replayed",
  "stale",
  "future",
  "truncated",
  "oversized",
  "unknown_partition",
  "wrong_version",
  "malformed",
  "rate_limited",
  "torn",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
export type RejectCounts = Record<RejectReason, number>;

export const emptyRejectCounts = (): RejectCounts =>
  Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as RejectCounts;

/** What an agent says about its own partition: cumulative counters plus its velocity. */
export interface ReportMessage {
  partitionIndex: number;
  sequence: number;
  timestampMs: number;
  /** Packets received inside the partition (offered), cumulative. */
  rxPackets: number;
  /** Packets sent by the partition (served), cumulative. */
  txPackets: number;
  droppedPackets: number;
  cpuUsageNs: number;
  nrPeriods: number;
  nrThrottled: number;
  throttledNs: number;
  /** Served packets per CPU-second over the agent's last window; null when unknown (NaN on the wire). */
  velocityPacketsPerCpuSec: number | null;
  /** Length of the window the velocity was computed over. */
  velocityWindowMs: number;
}

/** What the manager tells one partition to take. */
export interface DirectiveMessage {
  partitionIndex: number;
  sequence: number;
  timestampMs: number;
  /** CPU cap in millicores; Infinity = no cap (0xFFFFFFFF on the wire). */
  cpuMillis: number;
  weight: number;
  cpuCount: number;
  /** Run in the kernel's idle class (flags bit 0); absent = false. */
  idle?: boolean;
}

/** cap_millis on the wire meaning "no cap". */
export const NO_CAP_WIRE = 0xffffffff;
/** Directive flags (offset 44): bit 0 = idle class; the other bits must be 0. */
export const DIRECTIVE_FLAG_IDLE = 1;

/** One partition as both ends know it: wire index, manager-side id and shared key. */
export interface PartitionKeyEntry {
  index: number;
  id: PartitionId;
  key: Uint8Array;
}

/** Index -> (id, key) lookup shared by verifiers and encoders. */
export class KeyRing {
  private readonly byIndex = new Map<number, { id: PartitionId; key: MacKey }>();
  private readonly byId = new Map<PartitionId, number>();

  constructor(entries: Iterable<PartitionKeyEntry>) {
    for (const e of entries) {
      if (!Number.isInteger(e.index) || e.index < 0 || e.index > 0xffffffff)
        throw new RangeError(`partition index must be a u32: current value is ${e.index}`);
      if (e.key.length < MIN_KEY_BYTES)
        throw new RangeError(
          `key of partition '${e.id}' must be at least ${MIN_KEY_BYTES} bytes: current length is ${e.key.length}`,
        );
      if (this.byIndex.has(e.index)) throw new RangeError(`partition index ${e.index} used twice`);
      if (this.byId.has(e.id)) throw new RangeError(`partition id '${e.id}' used twice`);
      this.byIndex.set(e.index, { id: e.id, key: macKey(e.key) });
      this.byId.set(e.id, e.index);
    }
  }
  key(index: number): MacKey | undefined {
    return this.byIndex.get(index)?.key;
  }
  id(index: number): PartitionId | undefined {
    return this.byIndex.get(index)?.id;
  }
  index(id: PartitionId): number | undefined {
    return this.byId.get(id);
  }
  ids(): PartitionId[] {
    return [...this.byId.keys()];
  }
  get size(): number {
    return this.byIndex.size;
  }
}

/** A key from hex (64 hex digits recommended = 32 bytes). */
export function parseKeyHex(hex: string): Uint8Array {
  const clean = hex.trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(clean))
    throw new RangeError("key must be an even number of hex digits");
  const key = Buffer.from(clean, "hex");
  if (key.length < MIN_KEY_BYTES)
    throw new RangeError(
      `key must be at least ${MIN_KEY_BYTES} bytes (${MIN_KEY_BYTES * 2} hex digits): current length is ${key.length}`,
    );
  return new Uint8Array(key);
}

/** A raw key (prepared on every call) or a prepared one (macKey(), KeyRing.key()). */
export type Key = MacKey | Uint8Array;

function macInto(key: Key, bytes: Uint8Array, end: number, out: Uint8Array, at: number): void {
  (isMacKey(key) ? key : macKey(key)).sign(bytes, end, out, at);
}

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function setU64(view: DataView, at: number, value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${field} must be a non-negative safe integer: current value is ${value}`);
  view.setUint32(at, value % TWO_32, true);
  view.setUint32(at + 4, Math.floor(value / TWO_32), true);
}

function setU32(view: DataView, at: number, value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`${field} must be a u32: current value is ${value}`);
  view.setUint32(at, value, true);
}

// Readers straight from the bytes: a receiver checks many small messages, and a DataView per
// message (or over a Buffer from node's pool) costs more than the reads themselves.
const u8At = (b: Uint8Array, at: number): number => b[at]!;
const u16At = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const u32At = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
/** u64 as a number, or -1 when it does not fit a safe integer. */
function u64At(b: Uint8Array, at: number): number {
  const hi = u32At(b, at + 4);
  if (hi > MAX_SAFE_HI) return -1;
  return hi * TWO_32 + u32At(b, at);
}
const f64Scratch = new Float64Array(1);
const f64Bytes = new Uint8Array(f64Scratch.buffer);
function f64At(b: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[i] = b[at + i]!;
  return f64Scratch[0]!;
}
/** Compares two 32-byte tags without an early exit (the time does not depend on where they differ). */
function tagsEqual(a: Uint8Array, b: Uint8Array, bAt: number): boolean {
  let diff = 0;
  for (let i = 0; i < MAC_BYTES; i++) diff |= a[i]! ^ b[bAt + i]!;
  return diff === 0;
}

function writeHeader(
  view: DataView,
  type: number,
  length: number,
  index: number,
  sequence: number,
  timestampMs: number,
): void {
  view.setUint32(0, WIRE_MAGIC, true);
  view.setUint8(4, WIRE_VERSION);
  view.setUint8(5, type);
  view.setUint16(6, length, true);
  setU32(view, 8, index, "partitionIndex");
  view.setUint32(12, 0, true);
  if (sequence < 1) throw new RangeError(`sequence must be >= 1: current value is ${sequence}`);
  setU64(view, 16, sequence, "sequence");
  setU64(view, 24, timestampMs, "timestampMs");
}

/** Encode and sign a report; writes into `out` (136 bytes) when given. */
export function encodeReport(
  m: ReportMessage,
  key: Key,
  out: Uint8Array = new Uint8Array(REPORT_BYTES),
): Uint8Array {
  if (out.length < REPORT_BYTES) throw new RangeError(`report buffer needs ${REPORT_BYTES} bytes`);
  const view = dv(out);
  writeHeader(view, MESSAGE_TYPE_REPORT, REPORT_BYTES, m.partitionIndex, m.sequence, m.timestampMs);
  setU64(view, 32, m.rxPackets, "rxPackets");
  setU64(view, 40, m.txPackets, "txPackets");
  setU64(view, 48, m.droppedPackets, "droppedPackets");
  setU64(view, 56, m.cpuUsageNs, "cpuUsageNs");
  setU64(view, 64, m.nrPeriods, "nrPeriods");
  setU64(view, 72, m.nrThrottled, "nrThrottled");
  setU64(view, 80, m.throttledNs, "throttledNs");
  const v = m.velocityPacketsPerCpuSec;
  if (v !== null && (!Number.isFinite(v) || v < 0))
    throw new RangeError(`velocity must be finite and >= 0 or null: current value is ${v}`);
  view.setFloat64(88, v === null ? Number.NaN : v, true);
  setU32(view, 96, m.velocityWindowMs, "velocityWindowMs");
  view.setUint32(100, 0, true);
  macInto(key, out, REPORT_BYTES - MAC_BYTES, out, REPORT_BYTES - MAC_BYTES);
  return out.length === REPORT_BYTES ? out : out.subarray(0, REPORT_BYTES);
}

/** Encode and sign a directive; writes into `out` (80 bytes) when given. */
export function encodeDirective(
  m: DirectiveMessage,
  key: Key,
  out: Uint8Array = new Uint8Array(DIRECTIVE_BYTES),
): Uint8Array {
  if (out.length < DIRECTIVE_BYTES)
    throw new RangeError(`directive buffer needs ${DIRECTIVE_BYTES} bytes`);
  const view = dv(out);
  writeHeader(
    view,
    MESSAGE_TYPE_DIRECTIVE,
    DIRECTIVE_BYTES,
    m.partitionIndex,
    m.sequence,
    m.timestampMs,
  );
  if (m.cpuMillis === Number.POSITIVE_INFINITY) view.setUint32(32, NO_CAP_WIRE, true);
  else {
    if (!(m.cpuMillis < NO_CAP_WIRE))
      throw new RangeError(
        `cpuMillis must be below ${NO_CAP_WIRE} or Infinity: current value is ${m.cpuMillis}`,
      );
    setU32(view, 32, Math.round(m.cpuMillis), "cpuMillis");
  }
  if (!Number.isInteger(m.weight) || m.weight < 1 || m.weight > 10000)
    throw new RangeError(`weight must be an integer 1..10000: current value is ${m.weight}`);
  view.setUint32(36, m.weight, true);
  if (!Number.isInteger(m.cpuCount) || m.cpuCount < 0 || m.cpuCount > 0xffff)
    throw new RangeError(`cpuCount must be an integer 0..65535: current value is ${m.cpuCount}`);
  view.setUint32(40, m.cpuCount, true);
  view.setUint32(44, m.idle ? DIRECTIVE_FLAG_IDLE : 0, true);
  macInto(key, out, DIRECTIVE_BYTES - MAC_BYTES, out, DIRECTIVE_BYTES - MAC_BYTES);
  return out.length === DIRECTIVE_BYTES ? out : out.subarray(0, DIRECTIVE_BYTES);
}

function decodeReportBody(b: Uint8Array, o: number, index: number, sequence: number, ts: number) {
  const rxPackets = u64At(b, o + 32);
  const txPackets = u64At(b, o + 40);
  const droppedPackets = u64At(b, o + 48);
  const cpuUsageNs = u64At(b, o + 56);
  const nrPeriods = u64At(b, o + 64);
  const nrThrottled = u64At(b, o + 72);
  const throttledNs = u64At(b, o + 80);
  const velocity = f64At(b, o + 88);
  const velocityWindowMs = u32At(b, o + 96);
  if (
    rxPackets < 0 ||
    txPackets < 0 ||
    droppedPackets < 0 ||
    cpuUsageNs < 0 ||
    nrPeriods < 0 ||
    nrThrottled < 0 ||
    throttledNs < 0 ||
    u32At(b, o + 100) !== 0 ||
    (!Number.isNaN(velocity) && (!Number.isFinite(velocity) || velocity < 0))
  )
    return null;
  const m: ReportMessage = {
    partitionIndex: index,
    sequence,
    timestampMs: ts,
    rxPackets,
    txPackets,
    droppedPackets,
    cpuUsageNs,
    nrPeriods,
    nrThrottled,
    throttledNs,
    velocityPacketsPerCpuSec: Number.isNaN(velocity) ? null : velocity,
    velocityWindowMs,
  };
  return m;
}

function decodeDirectiveBody(
  b: Uint8Array,
  o: number,
  index: number,
  sequence: number,
  ts: number,
) {
  const cap = u32At(b, o + 32);
  const weight = u32At(b, o + 36);
  const cpuCount = u32At(b, o + 40);
  const flags = u32At(b, o + 44);
  if (weight < 1 || weight > 10000 || cpuCount > 0xffff || (flags & ~DIRECTIVE_FLAG_IDLE) !== 0)
    return null;
  const m: DirectiveMessage = {
    partitionIndex: index,
    sequence,
    timestampMs: ts,
    cpuMillis: cap === NO_CAP_WIRE ? Number.POSITIVE_INFINITY : cap,
    weight,
    cpuCount,
    idle: (flags & DIRECTIVE_FLAG_IDLE) !== 0,
  };
  return m;
}

export type Verified<T> =
  | { ok: true; message: T; partition: PartitionId }
  | { ok: false; reason: RejectReason };

/** A checked message not yet remembered (Verifier.inspect), to be settled or dropped. */
export type Inspected<T> =
  | { ok: true; message: T; partition: PartitionId; atMs: number; newRun: boolean }
  | { ok: false; reason: RejectReason };

export interface VerifierOptions {
  keys: KeyRing;
  /**
   * A message later than the partition's last accepted one may lag it by at most this much
   * more than the receiver's own clock moved in between (longer = delayed in transit: stale).
   * Default 5000.
   */
  maxAgeMs?: number;
  /**
   * Kept for callers of the skew check (`--max-skew-ms`): a sender's clock ahead of the run is
   * no longer refused (only the sender can make a higher sequence); the run follows it.
   */
  maxFutureMs?: number;
  /**
   * After this long without an accepted message from a partition — or after RESTART_GAP_FACTOR
   * times the longest recent gap between its accepted messages, when that is longer (see
   * Verifier) — its next authentic message starts a new run whatever its sequence and
   * timestamp: the sender restarted (perhaps after its wall clock stepped back, so its
   * sequence starts lower). Default RESTART_AFTER_MS.
   */
  restartAfterMs?: number;
  /** The receiver's clock (default: the step-free clock, src/core/clock.ts). */
  now?: () => number;
}

/** The shortest silence after which a message may start a new run (VerifierOptions.restartAfterMs). */
export const RESTART_AFTER_MS = 1000;
/** A new run needs a silence of at least this many times the sender's recent longest gap. */
export const RESTART_GAP_FACTOR = 4;
/** How fast a long gap is forgotten: its weight in the sender's recent gap halves every … */
export const GAP_HALF_LIFE_MS = 60_000;

/** What a receiver keeps per partition: the last accepted message of the sender's run. */
interface Run {
  sequence: number;
  timestampMs: number;
  /** Receiver's clock when it was accepted. */
  atMs: number;
  /**
   * The sender's recent longest gap between accepted messages (recentGapMs), kept across its
   * runs: the silence a new run needs is RESTART_GAP_FACTOR times it, at least restartAfterMs.
   */
  gapMs: number;
}

/** A recent gap `gapMs` after `elapsedMs` more of the receiver's time (GAP_HALF_LIFE_MS). */
export function decayedGapMs(gapMs: number, elapsedMs: number): number {
  return gapMs * 2 ** (-Math.max(0, elapsedMs) / GAP_HALF_LIFE_MS);
}

/**
 * The sender's recent longest gap after one more accepted message `gapMs` after the last: a
 * longer gap replaces it, a shorter one keeps it, its weight halving every GAP_HALF_LIFE_MS of
 * the receiver's time. Only a message that continues the sender's sequence (`continuesSequence`:
 * higher than the last) tells its cadence; a lower one (a sender restarted with its clock
 * stepped back, after a silence that is not its cadence) only decays it. A negative gap (the
 * receiver's clock stepped back) counts as 0.
 */
export function recentGapMs(lastGapMs: number, gapMs: number, continuesSequence: boolean): number {
  // a gap at least as long replaces it (the decayed one is shorter still): no power of two on
  // the verifier's path for a sender at its usual pace
  if (continuesSequence && gapMs >= lastGapMs) return gapMs;
  const decayed = decayedGapMs(lastGapMs, gapMs);
  return continuesSequence ? Math.max(Math.max(0, gapMs), decayed) : decayed;
}

/**
 * Whether a message `silenceMs` after a partition's last accepted one continues its run: the
 * silence is shorter than `restartAfterMs`, or than RESTART_GAP_FACTOR times the sender's recent
 * longest gap, decayed over the silence (so even after an hour-long gap a new run needs at most
 * a few minutes of silence). A negative silence (the receiver's clock stepped back) continues.
 */
export function continuesRun(silenceMs: number, gapMs: number, restartAfterMs: number): boolean {
  return (
    silenceMs < restartAfterMs || silenceMs < RESTART_GAP_FACTOR * decayedGapMs(gapMs, silenceMs)
  );
}

const fail = (reason: RejectReason): { ok: false; reason: RejectReason } => ({ ok: false, reason });
const FAILS = Object.fromEntries(REJECT_REASONS.map((r) => [r, Object.freeze(fail(r))])) as Record<
  RejectReason,
  { ok: false; reason: RejectReason }
>;

/**
 * Verifies messages of one type (reports on the manager, directives on an agent), keeps the
 * last accepted message per partition, and counts every rejection by reason.
 *
 * Clock discipline: the receiver never compares a sender's clock with its own, so neither
 * end's wall clock stepping (±10 s, an NTP step, a VM resumed) rejects anything. Replay is
 * refused by the sequence: within a run it must rise. Freshness is a delay: a message may lag
 * the last accepted one by at most `maxAgeMs` more than the receiver's own clock moved.
 * A new run starts with the first message ever, or with any authentic message after a
 * silence of `restartAfterMs`, or of RESTART_GAP_FACTOR times the sender's recent longest gap
 * between accepted messages when that is longer (a restarted sender whose clock stepped back
 * sends lower sequences: it is refused for at most that long). The gap keeps a captured message
 * from being replayed between a slow sender's messages: a sender that sends once a second (the
 * manager's unchanged directives, DIRECTIVE_REFRESH_MS) left a fixed 1,000 ms window open after
 * nearly every message. What this gives up: a message captured earlier and replayed when a
 * partition has been silent for four of its usual gaps is accepted once, and then loses to the
 * real sender's next message, whose sequence is higher.
 */
export class Verifier<T extends { partitionIndex: number; sequence: number; timestampMs: number }> {
  private readonly runs = new Map<number, Run>();
  private readonly counts = emptyRejectCounts();
  private readonly macScratch = new Uint8Array(MAC_BYTES);
  private readonly maxAgeMs: number;
  private readonly restartAfterMs: number;
  private readonly now: () => number;
  private acceptedCount = 0;
  private restartCount = 0;

  constructor(
    private readonly type: number,
    private readonly size: number,
    /** Decodes the body of the message at offset `o` of `b` (its header already checked). */
    private readonly decodeBody: (
      b: Uint8Array,
      o: number,
      i: number,
      s: number,
      t: number,
    ) => T | null,
    private readonly opts: VerifierOptions,
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? 5000;
    this.restartAfterMs = opts.restartAfterMs ?? RESTART_AFTER_MS;
    this.now = opts.now ?? stepFreeNowMs;
  }

  /**
   * Check one message and remember the outcome (a rejection is counted, an accepted message
   * continues or starts its partition's run). `nowMs`: the receiver's clock, when the caller
   * has read it already.
   */
  verify(bytes: Uint8Array, nowMs: number = this.now()): Verified<T> {
    return this.settle(this.inspect(bytes, nowMs));
  }

  /**
   * Check one message without remembering anything: what verify() would decide. Reads the
   * bytes and this verifier's state only, so it may run on bytes another process may be
   * rewriting (a shared-memory slot) and be thrown away when they changed meanwhile.
   */
  inspect(bytes: Uint8Array, nowMs: number = this.now()): Inspected<T> {
    return this.check(bytes, nowMs, 0, bytes.length);
  }

  /**
   * inspect() on the `length` bytes at offset `at` of `bytes`, read where they lie: a
   * shared-memory scan hands the whole mapping and a slot's offset, so no view per slot is
   * made or kept (only the MAC, when the header passes, gets one).
   */
  inspectAt(
    bytes: Uint8Array,
    at: number,
    length: number,
    nowMs: number = this.now(),
  ): Inspected<T> {
    if (!(at >= 0 && length >= 0 && at + length <= bytes.length))
      throw new RangeError(
        `message at ${at} of length ${length} is outside the ${bytes.length} bytes given`,
      );
    return this.check(bytes, nowMs, at, length);
  }

  /** Remember an inspected message's outcome, as verify() does. */
  settle(r: Inspected<T>): Verified<T> {
    if (!r.ok) {
      this.counts[r.reason]++;
      return r;
    }
    const m = r.message;
    if (r.newRun && this.runs.has(m.partitionIndex)) this.restartCount++;
    const run = this.runs.get(m.partitionIndex);
    if (run === undefined)
      this.runs.set(m.partitionIndex, {
        sequence: m.sequence,
        timestampMs: m.timestampMs,
        atMs: r.atMs,
        gapMs: 0,
      });
    else {
      run.gapMs = recentGapMs(run.gapMs, r.atMs - run.atMs, m.sequence > run.sequence);
      run.sequence = m.sequence;
      run.timestampMs = m.timestampMs;
      run.atMs = r.atMs;
    }
    this.acceptedCount++;
    return { ok: true, message: m, partition: r.partition };
  }

  /** Count a rejection found outside the codec (rate limit, torn shared-memory read). */
  count(reason: RejectReason): void {
    this.counts[reason]++;
  }

  /** The last accepted sequence of a partition (0 before any). */
  sequenceOf(index: number): number {
    return this.runs.get(index)?.sequence ?? 0;
  }

  /** Runs started after a partition's first (senders restarted or silent for restartAfterMs). */
  restarts(): number {
    return this.restartCount;
  }

  rejected(): RejectCounts {
    return { ...this.counts };
  }

  accepted(): number {
    return this.acceptedCount;
  }

  /** The `n` bytes at offset `o` of `bytes`. */
  private check(bytes: Uint8Array, now: number, o: number, n: number): Inspected<T> {
    if (n > MAX_MESSAGE_BYTES) return FAILS.oversized;
    if (n < MIN_CLASSIFIABLE_BYTES) return FAILS.truncated;
    if (u32At(bytes, o) !== WIRE_MAGIC) return FAILS.malformed;
    if (u8At(bytes, o + 4) !== WIRE_VERSION) return FAILS.wrong_version;
    if (u8At(bytes, o + 5) !== this.type) return FAILS.malformed;
    if (u16At(bytes, o + 6) !== this.size) return FAILS.malformed;
    if (n < this.size) return FAILS.truncated;
    if (n > this.size) return FAILS.oversized;
    const index = u32At(bytes, o + 8);
    const key = this.opts.keys.key(index);
    if (key === undefined) return FAILS.unknown_partition;
    const macAt = this.size - MAC_BYTES;
    macInto(key, o === 0 ? bytes : bytes.subarray(o, o + n), macAt, this.macScratch, 0);
    if (!tagsEqual(this.macScratch, bytes, o + macAt)) return FAILS.forged;
    const sequence = u64At(bytes, o + 16);
    const ts = u64At(bytes, o + 24);
    if (u32At(bytes, o + 12) !== 0 || sequence < 1 || ts < 0) return FAILS.malformed;
    const message = this.decodeBody(bytes, o, index, sequence, ts);
    if (message === null) return FAILS.malformed;
    const run = this.runs.get(index);
    // `now - atMs` may be negative when a caller's clock steps back: that continues the run
    const continues =
      run !== undefined && continuesRun(now - run.atMs, run.gapMs, this.restartAfterMs);
    if (continues) {
      if (sequence <= run.sequence) return FAILS.replayed;
      if (ts < run.timestampMs + Math.max(0, now - run.atMs) - this.maxAgeMs) return FAILS.stale;
    }
    return {
      ok: true,
      message,
      partition: this.opts.keys.id(index)!,
      atMs: now,
      newRun: !continues,
    };
  }
}

export class ReportVerifier extends Verifier<ReportMessage> {
  constructor(opts: VerifierOptions) {
    super(MESSAGE_TYPE_REPORT, REPORT_BYTES, decodeReportBody, opts);
  }
}

export class DirectiveVerifier extends Verifier<DirectiveMessage> {
  constructor(opts: VerifierOptions) {
    super(MESSAGE_TYPE_DIRECTIVE, DIRECTIVE_BYTES, decodeDirectiveBody, opts);
  }
}

/**
 * A sequence source that survives restarts without a state file: it starts at the wall
 * clock in microseconds and counts up from there, so a restarted sender continues above
 * anything it sent before (as long as it sent fewer than a million messages a second).
 */
export function sequenceCounter(now: () => number = stepFreeNowMs): () => number {
  let last = 0;
  return () => {
    const fromClock = Math.floor(now() * 1000);
    last = fromClock > last ? fromClock : last + 1;
    return last;
  };
}
