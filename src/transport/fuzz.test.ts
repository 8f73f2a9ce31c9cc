// Bad input, in bulk: a million random and mutated reports through the verifier, table
// writes through real shared-memory slots, and a share over a real UDP socket.
// Every case is built to fail one specific check, so the counts by reason must match
// exactly; nothing may be accepted; memory must stay flat.
import { createHmac } from "node:crypto";
import dgram from "node:dgram";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import v8 from "node:v8";
import vm from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import {
  emptyRejectCounts,
  encodeReport,
  KeyRing,
  parseKeyHex,
  REPORT_BYTES,
  type RejectCounts,
  type RejectReason,
  type ReportMessage,
  ReportVerifier,
} from "./codec.ts";
import { eventually } from "./contract.ts";
import { DatagramReportSource } from "./datagram.ts";
import { SLOT_REPORT_AREA, SLOT_REPORT_LOCK, slotPath } from "./shm.ts";
import { ShmAgentChannel, ShmReportSource } from "./shm-source.ts";

/** `src` after it read what its socket holds (its counters say what has been read). */
const polled = (src: DatagramReportSource) => {
  src.poll();
  return src;
};

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const NOW = 1_800_000_000_000;
const PARTITIONS = 4;
const KEYS = Array.from({ length: PARTITIONS }, (_, i) =>
  parseKeyHex(((i + 1) * 0x11).toString(16).padStart(2, "0").repeat(32)),
);
const STRANGER = parseKeyHex("5a".repeat(32));
const ring = () => new KeyRing(KEYS.map((key, index) => ({ index, id: `p${index}`, key })));
/** Sequences every partition has already used (accepted in setup). */
const USED_SEQUENCE = 1_000_000;

/** mulberry32: small, seeded, good enough to drive mutations reproducibly. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const message = (index: number, sequence: number, timestampMs = NOW): ReportMessage => ({
  partitionIndex: index,
  sequence,
  timestampMs,
  rxPackets: sequence * 3,
  txPackets: sequence * 2,
  droppedPackets: sequence,
  cpuUsageNs: sequence * 1000,
  nrPeriods: 10,
  nrThrottled: 1,
  throttledNs: 5,
  velocityPacketsPerCpuSec: 1234.5,
  velocityWindowMs: 100,
});

function resign(b: Uint8Array, key: Uint8Array): void {
  const mac = createHmac("sha256", key)
    .update(b.subarray(0, REPORT_BYTES - 32))
    .digest();
  b.set(mac, REPORT_BYTES - 32);
}

interface Case {
  bytes: Uint8Array;
  reason: RejectReason;
}

/**
 * Builds bad reports, each aimed at one check. Signed pools are made once (HMAC is the
 * expensive part) and mutated into a reused scratch buffer, so the million cases cost
 * verification time, not generation time.
 */
class BadReports {
  private readonly r: () => number;
  private readonly scratch = new Uint8Array(256);
  private readonly legit: Uint8Array[];
  private readonly fresh: Uint8Array[];
  private readonly stale: Uint8Array[];
  private readonly future: Uint8Array[];
  private readonly unknown: Uint8Array[];
  private readonly signedGarbage: Uint8Array[];
  private readonly older: Uint8Array[];

  constructor(seed: number) {
    this.r = rng(seed);
    const pool = (n: number, make: (i: number, p: number) => Uint8Array) =>
      Array.from({ length: n }, (_, i) => make(i, i % PARTITIONS));
    this.legit = KEYS.map((key, p) => encodeReport(message(p, USED_SEQUENCE), key));
    this.older = pool(64, (i, p) => encodeReport(message(p, USED_SEQUENCE - 1 - i), KEYS[p]!));
    this.fresh = pool(256, (i, p) => encodeReport(message(p, USED_SEQUENCE + 1 + i), KEYS[p]!));
    this.stale = pool(128, (i, p) =>
      encodeReport(message(p, USED_SEQUENCE + 1 + i, NOW - 5001 - i * 1000), KEYS[p]!),
    );
    // delayed far longer: a minute to an hour late
    this.future = pool(128, (i, p) =>
      encodeReport(message(p, USED_SEQUENCE + 1 + i, NOW - 60_000 - i * 28_000), KEYS[p]!),
    );
    this.unknown = pool(64, (i) =>
      encodeReport(message(PARTITIONS + i * 7919, USED_SEQUENCE + 1), STRANGER),
    );
    this.signedGarbage = pool(128, (i, p) => {
      const b = encodeReport(message(p, USED_SEQUENCE + 1 + i), KEYS[p]!).slice();
      const v = new DataView(b.buffer);
      // Content only a key holder could sign, yet invalid: negative / infinite velocity,
      // a reserved word set, a counter above 2^53, sequence 0.
      switch (i % 5) {
        case 0:
          v.setFloat64(88, -1 - i, true);
          break;
        case 1:
          v.setFloat64(88, Number.POSITIVE_INFINITY, true);
          break;
        case 2:
          v.setUint32(100, 1 + i, true);
          break;
        case 3:
          v.setUint32(36, 0x00200000 + i, true);
          break;
        default:
          v.setUint32(16, 0, true);
          v.setUint32(20, 0, true);
      }
      resign(b, KEYS[p]!);
      return b;
    });
  }

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }
  private pick<T>(a: T[]): T {
    return a[this.int(a.length)]!;
  }
  private copy(src: Uint8Array, len = src.length): Uint8Array {
    const out = this.scratch.subarray(0, len);
    out.set(src.subarray(0, Math.min(len, src.length)));
    return out;
  }

  next(): Case {
    const k = this.int(100);
    if (k < 25) {
      // Random bytes of random length.
      const len = this.int(201);
      const out = this.scratch.subarray(0, len);
      for (let i = 0; i < len; i++) out[i] = this.int(256);
      if (len > REPORT_BYTES) return { bytes: out, reason: "oversized" };
      if (len < 8) return { bytes: out, reason: "truncated" };
      if (out[0] === 0x57) out[0] = 0x58; // never the magic by chance
      return { bytes: out, reason: "malformed" };
    }
    if (k < 35) {
      // A real report cut short anywhere after the classifiable prefix, or before it.
      const len = this.int(REPORT_BYTES);
      return { bytes: this.copy(this.pick(this.fresh), len), reason: "truncated" };
    }
    if (k < 40) {
      // A real report with trailing bytes.
      const len = REPORT_BYTES + 1 + this.int(64);
      const out = this.copy(this.pick(this.fresh), len);
      for (let i = REPORT_BYTES; i < len; i++) out[i] = this.int(256);
      return { bytes: out, reason: "oversized" };
    }
    if (k < 45) {
      const out = this.copy(this.pick(this.fresh));
      out[4] = 2 + this.int(254); // any version but 1
      return { bytes: out, reason: "wrong_version" };
    }
    if (k < 48) {
      const out = this.copy(this.pick(this.fresh));
      out[5] = this.int(2) === 0 ? 0 : 2 + this.int(254); // any type but report
      return { bytes: out, reason: "malformed" };
    }
    if (k < 51) {
      const out = this.copy(this.pick(this.fresh));
      out[6] = (out[6]! + 1 + this.int(255)) & 0xff; // any length field but 136
      return { bytes: out, reason: "malformed" };
    }
    if (k < 55) return { bytes: this.copy(this.pick(this.unknown)), reason: "unknown_partition" };
    if (k < 75) {
      // Bit flips at 1-4 distinct places past the partition index: counters, sequence,
      // time, MAC. (Distinct places, so flips never cancel into the original message.)
      const out = this.copy(this.pick(this.fresh));
      const flips = 1 + this.int(4);
      const first = 12 + this.int(REPORT_BYTES - 12 - flips);
      const stride = 1 + this.int(Math.floor((REPORT_BYTES - 1 - first) / flips));
      for (let f = 0; f < flips; f++) out[first + f * stride]! ^= 1 << this.int(8);
      return { bytes: out, reason: "forged" };
    }
    if (k < 80) {
      // A report signed with the right key of another partition's index, or a stranger key.
      const out = this.copy(this.pick(this.fresh));
      out[8] = (out[8]! + 1 + this.int(PARTITIONS - 1)) % PARTITIONS;
      return { bytes: out, reason: "forged" };
    }
    if (k < 85) return { bytes: this.copy(this.pick(this.signedGarbage)), reason: "malformed" };
    if (k < 90) {
      const src = this.int(2) === 0 ? this.pick(this.legit) : this.pick(this.older);
      return { bytes: this.copy(src), reason: "replayed" };
    }
    // A timestamp ahead of the run is not refused (only the sender can make a higher
    // sequence: its clock moved forward), so no case aims at "future".
    if (k < 95) return { bytes: this.copy(this.pick(this.stale)), reason: "stale" };
    return { bytes: this.copy(this.pick(this.future)), reason: "stale" };
  }

  /** A verifier that has accepted sequence USED_SEQUENCE from every partition. */
  verifier(): ReportVerifier {
    const v = new ReportVerifier({ keys: ring(), now: () => NOW });
    for (const b of this.legit) expect(v.verify(b).ok).toBe(true);
    return v;
  }

  legitReports(): Uint8Array[] {
    return this.legit;
  }
}

const sum = (c: RejectCounts) => Object.values(c).reduce((a, b) => a + b, 0);

const made: string[] = [];
afterAll(() => {
  for (const p of made) rmSync(p, { force: true, recursive: true });
});

describe("fuzz: bad reports are counted by reason and never accepted", () => {
  it("1,000,000 random and mutated reports through the verifier, memory flat", () => {
    const gen = new BadReports(0xc0ffee);
    const v = gen.verifier();
    const expected = emptyRejectCounts();
    const total = 1_000_000;
    let accepted = 0;
    let heapAfterWarmup = 0;
    let rssAfterWarmup = 0;
    for (let i = 0; i < total; i++) {
      const c = gen.next();
      expected[c.reason]++;
      if (v.verify(c.bytes).ok) accepted++;
      if (i === 100_000) {
        gc();
        heapAfterWarmup = process.memoryUsage().heapUsed;
        rssAfterWarmup = process.memoryUsage().rss;
      }
    }
    gc();
    const heapGrowth = process.memoryUsage().heapUsed - heapAfterWarmup;
    // Native memory too (the libcrypto MAC goes through FFI): the process may not grow either.
    const rssGrowth = process.memoryUsage().rss - rssAfterWarmup;
    expect(accepted).toBe(0);
    expect(v.accepted()).toBe(PARTITIONS); // only the setup reports
    expect(v.rejected()).toEqual(expected);
    expect(sum(expected)).toBe(total);
    for (const reason of [
      "forged",
      "replayed",
      "stale",
      "truncated",
      "oversized",
      "unknown_partition",
      "wrong_version",
      "malformed",
    ] as const)
      expect(expected[reason]).toBeGreaterThan(10_000);
    // 900,000 messages after the warm-up may not leave more than a few MB behind.
    expect(heapGrowth).toBeLessThan(8 * 1024 * 1024);
    expect(rssGrowth).toBeLessThan(48 * 1024 * 1024);
  }, 120_000);

  it("50,000 garbage and mutated writes into real shared-memory slots through the agent API", () => {
    const path = `/dev/shm/weirt-${process.pid}-fuzz`;
    made.push(path);
    const gen = new BadReports(0xbadd);
    const source = new ShmReportSource({ path, keys: ring(), now: () => NOW });
    const agents = KEYS.map(
      (key, i) => new ShmAgentChannel({ path, partitionIndex: i, key, now: () => NOW }),
    );
    // Each partition first publishes one good report (so replays have something to replay).
    for (const [i, b] of gen.legitReports().entries()) agents[i]!.publish(b);
    expect(source.latest().size).toBe(PARTITIONS);
    const acceptedBefore = source.accepted();
    const expected = emptyRejectCounts();
    let writes = 0;
    let changed = 0;
    while (writes < 50_000) {
      const c = gen.next();
      if (c.bytes.length !== REPORT_BYTES) continue; // the API takes exactly one report's bytes
      // Written by the partition whose slot the bytes name, or copied by a neighbour into
      // its own slot (then the slot check rejects it as forged before the MAC is looked at).
      const indexField =
        c.bytes[8]! | (c.bytes[9]! << 8) | (c.bytes[10]! << 16) | (c.bytes[11]! << 24);
      const named = (indexField >>> 0) % PARTITIONS;
      const slot = writes % 7 === 0 ? (named + 1) % PARTITIONS : named;
      agents[slot]!.publish(c.bytes);
      changed += source.poll();
      expected[indexField >>> 0 !== slot ? "forged" : c.reason]++;
      writes++;
    }
    expect(changed).toBe(writes);
    expect(source.accepted()).toBe(acceptedBefore);
    expect(source.rejected()).toEqual(expected);
    // Scribbles that bypass the API: random bytes over each slot's lock word and report area.
    const r = rng(7);
    const fds = KEYS.map((_, i) => openSync(slotPath(path, i), "r+"));
    const junk = Buffer.alloc(REPORT_BYTES);
    for (let i = 0; i < 2000; i++) {
      for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(r() * 256);
      const fd = fds[Math.floor(r() * PARTITIONS)]!;
      writeSync(fd, junk, 0, junk.length, SLOT_REPORT_AREA);
      writeSync(fd, junk, 0, 4, SLOT_REPORT_LOCK); // random lock: odd or even
      source.poll();
    }
    for (const fd of fds) closeSync(fd);
    expect(source.accepted()).toBe(acceptedBefore);
    expect(sum(source.rejected())).toBeGreaterThan(sum(expected));
    for (const a of agents) a.close();
    source.close();
  }, 120_000);

  it("20,000 bad datagrams over a real UDP socket: all counted, none accepted", async () => {
    const gen = new BadReports(0x5eed);
    const keys = ring();
    const src = await DatagramReportSource.open({
      keys,
      now: () => NOW,
      rateLimit: { ratePerSec: 1e9, burst: 1e9 },
    });
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((res) => sock.bind(0, "127.0.0.1", () => res()));
    const { port } = src.address();
    const send = (b: Uint8Array) =>
      new Promise<void>((res) => sock.send(Buffer.from(b), port, "127.0.0.1", () => res()));
    for (const b of gen.legitReports()) await send(b);
    await eventually(() => (polled(src).accepted() === PARTITIONS ? true : undefined));
    const expected = emptyRejectCounts();
    const total = 20_000;
    const batch = 200;
    let lost = false;
    for (let sent = 0; sent < total; sent += batch) {
      for (let i = 0; i < batch; i++) {
        const c = gen.next();
        expected[c.reason]++;
        await send(c.bytes);
      }
      try {
        await eventually(
          () => (polled(src).datagramsReceived() >= PARTITIONS + sent + batch ? true : undefined),
          3000,
        );
      } catch {
        lost = true; // loopback dropped some under load: compare totals, not reasons
        break;
      }
    }
    expect(src.accepted()).toBe(PARTITIONS);
    expect(sum(src.rejected())).toBe(src.datagramsReceived() - PARTITIONS);
    if (!lost) expect(src.rejected()).toEqual(expected);
    sock.close();
    src.close();
  }, 120_000);
});
