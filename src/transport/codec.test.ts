import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DIRECTIVE_BYTES,
  DirectiveVerifier,
  encodeDirective,
  encodeReport,
  KeyRing,
  parseKeyHex,
  REPORT_BYTES,
  type ReportMessage,
  ReportVerifier,
  sequenceCounter,
} from "./codec.ts";

const KEY_A = parseKeyHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const KEY_B = parseKeyHex("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100");
const NOW = 1_700_000_000_000;

const ring = () =>
  new KeyRing([
    { index: 0, id: "web", key: KEY_A },
    { index: 7, id: "db", key: KEY_B },
  ]);

const report = (over: Partial<ReportMessage> = {}): ReportMessage => ({
  partitionIndex: 0,
  sequence: 1,
  timestampMs: NOW,
  rxPackets: 1000,
  txPackets: 990,
  droppedPackets: 10,
  cpuUsageNs: 250_000_000,
  nrPeriods: 100,
  nrThrottled: 3,
  throttledNs: 4_000_000,
  velocityPacketsPerCpuSec: 3960,
  velocityWindowMs: 100,
  ...over,
});

const verifier = () => new ReportVerifier({ keys: ring(), now: () => NOW });

describe("report codec", () => {
  it("round-trips every field, little-endian, 136 bytes", () => {
    const bytes = encodeReport(report({ rxPackets: 2 ** 40 + 5 }), KEY_A);
    expect(bytes.length).toBe(REPORT_BYTES);
    // "WEIR", version 1, type 1, length 136 (0x88 0x00)
    expect(Buffer.from(bytes.subarray(0, 8)).toString("hex")).toBe("5745495201018800");
    const r = verifier().verify(bytes);
    expect(r).toEqual({
      ok: true,
      partition: "web",
      message: report({ rxPackets: 2 ** 40 + 5 }),
    });
  });

  it("carries an unknown velocity as NaN and decodes it as null", () => {
    const bytes = encodeReport(report({ velocityPacketsPerCpuSec: null }), KEY_A);
    expect(Number.isNaN(Buffer.from(bytes).readDoubleLE(88))).toBe(true);
    const r = verifier().verify(bytes);
    expect(r.ok && r.message.velocityPacketsPerCpuSec).toBe(null);
  });

  it("refuses to encode values the wire cannot carry", () => {
    expect(() => encodeReport(report({ sequence: 0 }), KEY_A)).toThrow(/sequence/);
    expect(() => encodeReport(report({ rxPackets: -1 }), KEY_A)).toThrow(/rxPackets/);
    expect(() => encodeReport(report({ velocityPacketsPerCpuSec: -2 }), KEY_A)).toThrow(/velocity/);
    expect(() => encodeReport(report({ partitionIndex: 2 ** 32 }), KEY_A)).toThrow(/u32/);
  });

  it("refuses short keys and duplicate indexes in a key ring", () => {
    expect(() => new KeyRing([{ index: 0, id: "a", key: new Uint8Array(8) }])).toThrow(/16 bytes/);
    expect(
      () =>
        new KeyRing([
          { index: 0, id: "a", key: KEY_A },
          { index: 0, id: "b", key: KEY_B },
        ]),
    ).toThrow(/used twice/);
    expect(() => parseKeyHex("abc")).toThrow(/hex/);
  });
});

describe("report verification rejects by reason", () => {
  const cases: Array<[string, (v: ReportVerifier) => Uint8Array, string]> = [
    ["empty", () => new Uint8Array(0), "truncated"],
    ["7 bytes", () => encodeReport(report(), KEY_A).subarray(0, 7), "truncated"],
    ["header only", () => encodeReport(report(), KEY_A).subarray(0, 32), "truncated"],
    [
      "one byte extra",
      () => Buffer.concat([encodeReport(report(), KEY_A), Buffer.alloc(1)]),
      "oversized",
    ],
    ["bad magic", () => mutate(encodeReport(report(), KEY_A), 0, 0x58), "malformed"],
    ["version 2", () => mutate(encodeReport(report(), KEY_A), 4, 2), "wrong_version"],
    ["directive type", () => mutate(encodeReport(report(), KEY_A), 5, 2), "malformed"],
    ["length field", () => mutate(encodeReport(report(), KEY_A), 6, 0x87), "malformed"],
    [
      "unknown partition",
      () => encodeReport(report({ partitionIndex: 3 }), KEY_A),
      "unknown_partition",
    ],
    ["wrong key", () => encodeReport(report(), KEY_B), "forged"],
    ["flipped counter bit", () => mutate(encodeReport(report(), KEY_A), 33, 0xff), "forged"],
    ["flipped MAC bit", () => mutate(encodeReport(report(), KEY_A), 135, 0x00), "forged"],
    [
      "signed garbage velocity",
      () => {
        const b = Buffer.from(encodeReport(report(), KEY_A));
        b.writeDoubleLE(-1, 88);
        return resign(b, KEY_A);
      },
      "malformed",
    ],
    [
      "signed counter above 2^53",
      () => {
        const b = Buffer.from(encodeReport(report(), KEY_A));
        b.writeUInt32LE(0xffffffff, 36);
        return resign(b, KEY_A);
      },
      "malformed",
    ],
    [
      "replay",
      (v) => {
        const b = encodeReport(report({ sequence: 5 }), KEY_A);
        expect(v.verify(b).ok).toBe(true);
        return b;
      },
      "replayed",
    ],
    [
      "older sequence",
      (v) => {
        expect(v.verify(encodeReport(report({ sequence: 5 }), KEY_A)).ok).toBe(true);
        return encodeReport(report({ sequence: 4 }), KEY_A);
      },
      "replayed",
    ],
    ["5.001 s old", () => encodeReport(report({ timestampMs: NOW - 5001 }), KEY_A), "stale"],
    ["5.001 s ahead", () => encodeReport(report({ timestampMs: NOW + 5001 }), KEY_A), "future"],
  ];
  for (const [name, make, reason] of cases) {
    it(`${name} -> ${reason}`, () => {
      const v = verifier();
      const bytes = make(v);
      const r = v.verify(bytes);
      expect(r).toEqual({ ok: false, reason });
      expect(v.rejected()[reason as "forged"]).toBe(1);
      const total = Object.values(v.rejected()).reduce((a, b) => a + b, 0);
      expect(total).toBe(1);
    });
  }

  it("accepts timestamps exactly at the skew bounds and a later sequence after a replay", () => {
    const v = verifier();
    expect(v.verify(encodeReport(report({ sequence: 1, timestampMs: NOW - 5000 }), KEY_A)).ok).toBe(
      true,
    );
    expect(v.verify(encodeReport(report({ sequence: 1 }), KEY_A)).ok).toBe(false);
    expect(v.verify(encodeReport(report({ sequence: 2, timestampMs: NOW + 5000 }), KEY_A)).ok).toBe(
      true,
    );
    expect(v.sequenceOf(0)).toBe(2);
    expect(v.accepted()).toBe(2);
  });

  it("keeps sequences per partition: one partition's sequence does not block another", () => {
    const v = verifier();
    expect(v.verify(encodeReport(report({ sequence: 100 }), KEY_A)).ok).toBe(true);
    const db = v.verify(encodeReport(report({ partitionIndex: 7, sequence: 1 }), KEY_B));
    expect(db.ok && db.partition).toBe("db");
  });

  it("a report cannot pass as a directive, nor a directive as a report", () => {
    const dv = new DirectiveVerifier({ keys: ring(), now: () => NOW });
    expect(dv.verify(encodeReport(report(), KEY_A))).toEqual({ ok: false, reason: "malformed" });
    const d = encodeDirective(
      {
        partitionIndex: 0,
        sequence: 1,
        timestampMs: NOW,
        cpuMillis: 1500,
        weight: 200,
        cpuCount: 2,
      },
      KEY_A,
    );
    expect(verifier().verify(d)).toEqual({ ok: false, reason: "malformed" });
  });
});

describe("directive codec", () => {
  it("round-trips, 80 bytes, and rejects bad weight even when signed", () => {
    const d = {
      partitionIndex: 7,
      sequence: 9,
      timestampMs: NOW,
      cpuMillis: 1500,
      weight: 200,
      cpuCount: 2,
      idle: false,
    };
    const bytes = encodeDirective(d, KEY_B);
    expect(bytes.length).toBe(DIRECTIVE_BYTES);
    const v = new DirectiveVerifier({ keys: ring(), now: () => NOW });
    expect(v.verify(bytes)).toEqual({ ok: true, partition: "db", message: d });
    expect(v.verify(bytes)).toEqual({ ok: false, reason: "replayed" });
    const bad = Buffer.from(encodeDirective({ ...d, sequence: 10 }, KEY_B));
    bad.writeUInt32LE(0, 36);
    expect(v.verify(resign(bad, KEY_B))).toEqual({ ok: false, reason: "malformed" });
    expect(() => encodeDirective({ ...d, weight: 0 }, KEY_B)).toThrow(/weight/);
  });

  it("carries no cap as 0xFFFFFFFF and the idle class in flags bit 0; other flag bits are malformed", () => {
    const d = {
      partitionIndex: 7,
      sequence: 20,
      timestampMs: NOW,
      cpuMillis: Number.POSITIVE_INFINITY,
      weight: 1,
      cpuCount: 2,
      idle: true,
    };
    const bytes = Buffer.from(encodeDirective(d, KEY_B));
    expect(bytes.readUInt32LE(32)).toBe(0xffffffff);
    expect(bytes.readUInt32LE(44)).toBe(1);
    const v = new DirectiveVerifier({ keys: ring(), now: () => NOW });
    expect(v.verify(bytes)).toEqual({ ok: true, partition: "db", message: d });
    const bad = Buffer.from(encodeDirective({ ...d, sequence: 21 }, KEY_B));
    bad.writeUInt32LE(2, 44);
    expect(v.verify(resign(bad, KEY_B))).toEqual({ ok: false, reason: "malformed" });
  });
});

describe("sequenceCounter", () => {
  it("starts at the clock in microseconds and never repeats, even when the clock stalls", () => {
    let t = 1000;
    const next = sequenceCounter(() => t);
    expect(next()).toBe(1_000_000);
    expect(next()).toBe(1_000_001);
    t = 999; // clock stepped back
    expect(next()).toBe(1_000_002);
    t = 2000;
    expect(next()).toBe(2_000_000);
  });
});

function mutate(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const b = Buffer.from(bytes);
  b[at] = value === b[at] ? value ^ 1 : value;
  return b;
}

function resign(b: Buffer, key: Uint8Array): Uint8Array {
  const macAt = b.length - 32;
  createHmac("sha256", key).update(b.subarray(0, macAt)).digest().copy(b, macAt);
  return b;
}
