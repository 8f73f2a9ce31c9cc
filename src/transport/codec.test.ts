import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  continuesRun,
  DIRECTIVE_BYTES,
  DirectiveVerifier,
  encodeDirective,
  encodeReport,
  GAP_HALF_LIFE_MS,
  KeyRing,
  parseKeyHex,
  REPORT_BYTES,
  RESTART_AFTER_MS,
  RESTART_GAP_FACTOR,
  type ReportMessage,
  ReportVerifier,
  recentGapMs,
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
    [
      "5.001 s later than the last one",
      (v) => {
        expect(v.verify(encodeReport(report({ sequence: 1 }), KEY_A)).ok).toBe(true);
        return encodeReport(report({ sequence: 2, timestampMs: NOW - 5001 }), KEY_A);
      },
      "stale",
    ],
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

  /** `bytes` at offset 300 of a larger buffer of other bytes, as in a shared-memory mapping. */
  const embedded = (bytes: Uint8Array): Uint8Array => {
    const big = new Uint8Array(300 + bytes.length + 300).fill(0xa5);
    big.set(bytes, 300);
    return big;
  };
  for (const [name, make, reason] of cases) {
    it(`${name} -> ${reason}, read in place at an offset (inspectAt)`, () => {
      const v = verifier();
      const bytes = make(v);
      expect(v.inspectAt(embedded(bytes), 300, bytes.length)).toEqual({ ok: false, reason });
    });
  }

  it("inspectAt decides as inspect on the same bytes, and refuses a range outside them", () => {
    const bytes = encodeReport(report({ rxPackets: 2 ** 40 + 5 }), KEY_A);
    const v = verifier();
    const at = v.inspectAt(embedded(bytes), 300, bytes.length);
    expect(at).toEqual(v.inspect(bytes));
    expect(at.ok && at.message).toEqual(report({ rxPackets: 2 ** 40 + 5 }));
    expect(() => v.inspectAt(bytes, 1, bytes.length)).toThrow(/outside the 136 bytes/);
    expect(() => v.inspectAt(bytes, -1, 10)).toThrow(/outside/);
  });

  it("accepts a delay exactly at the bound, any clock ahead, and a later sequence after a replay", () => {
    const v = verifier();
    // the first message anchors the run whatever its clock says (60 s behind the receiver)
    expect(
      v.verify(encodeReport(report({ sequence: 1, timestampMs: NOW - 60_000 }), KEY_A)).ok,
    ).toBe(true);
    expect(v.verify(encodeReport(report({ sequence: 1 }), KEY_A)).ok).toBe(false);
    // 5,000 ms behind the last accepted with no time passed here: at the bound, accepted
    expect(
      v.verify(encodeReport(report({ sequence: 2, timestampMs: NOW - 65_000 }), KEY_A)).ok,
    ).toBe(true);
    // an hour ahead: only the sender makes higher sequences, so its clock moved: accepted
    expect(
      v.verify(encodeReport(report({ sequence: 3, timestampMs: NOW + 3_600_000 }), KEY_A)).ok,
    ).toBe(true);
    expect(v.sequenceOf(0)).toBe(3);
    expect(v.accepted()).toBe(3);
    expect(v.rejected().future).toBe(0);
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

describe("clock discipline: wall-clock steps of ±10 s", () => {
  // An agent reporting every 100 ms; `t` is the receiver's clock, `skew` the sender's offset.
  const run = (opts: {
    receiverStepAtMs?: number;
    receiverStepMs?: number;
    senderStepAtMs?: number;
    senderStepMs?: number;
  }) => {
    let t = NOW;
    const v = new ReportVerifier({ keys: ring(), now: () => t });
    let senderClock = NOW + 123; // any offset: never compared with the receiver's
    let seq = 1_000;
    const outcomes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const at = i * 100;
      if (at === opts.receiverStepAtMs) t += opts.receiverStepMs ?? 0;
      if (at === opts.senderStepAtMs) senderClock += opts.senderStepMs ?? 0;
      const r = v.verify(
        encodeReport(report({ sequence: seq++, timestampMs: senderClock }), KEY_A),
      );
      outcomes.push(r.ok ? "ok" : r.reason);
      t += 100;
      senderClock += 100;
    }
    return { v, outcomes };
  };
  const count = (xs: string[], x: string) => xs.filter((y) => y === x).length;

  it("the receiver's clock stepping +10 s or −10 s rejects nothing", () => {
    for (const step of [10_000, -10_000]) {
      const { v, outcomes } = run({ receiverStepAtMs: 2000, receiverStepMs: step });
      expect(count(outcomes, "ok"), `step ${step}`).toBe(40);
      // +10 s looks like 10 s of silence: a new run (counted), nothing refused
      expect(v.restarts(), `step ${step}`).toBe(step > 0 ? 1 : 0);
    }
  });

  it("a running sender whose clock steps +10 s is not refused", () => {
    const { outcomes } = run({ senderStepAtMs: 2000, senderStepMs: 10_000 });
    expect(count(outcomes, "ok")).toBe(40);
  });

  it("a running sender whose clock steps −10 s loses one second, then a new run starts", () => {
    // weir's own agent reads the step-free clock and never sees the step; a sender that reads
    // its wall clock does. Last accepted at 1,900 ms: 2,000..2,800 lag 10 s > 5 s (stale, 9);
    // at 2,900 ms nothing was accepted for 1,000 ms, so that one starts a new run.
    const { v, outcomes } = run({ senderStepAtMs: 2000, senderStepMs: -10_000 });
    expect(outcomes.slice(20, 30)).toEqual([...Array(9).fill("stale"), "ok"]);
    expect(count(outcomes, "ok")).toBe(31);
    expect(v.restarts()).toBe(1);
  });

  it("a sender restarted after its clock stepped −10 s is back within a second", () => {
    let t = NOW;
    const v = new ReportVerifier({ keys: ring(), now: () => t });
    let wall = NOW;
    const first = sequenceCounter(() => wall);
    const send = (next: () => number) =>
      v.verify(encodeReport(report({ sequence: next(), timestampMs: wall }), KEY_A));
    for (let i = 0; i < 10; i++, t += 100, wall += 100) expect(send(first).ok).toBe(true);
    // last accepted at NOW + 900; the clock steps back 10 s and the sender restarts in 300 ms:
    // its sequences start at (wall in µs), 10 s below the last run's
    wall -= 10_000;
    t += 200;
    wall += 200;
    const second = sequenceCounter(() => wall);
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++, t += 100, wall += 100) {
      const r = send(second);
      outcomes.push(r.ok ? "ok" : r.reason);
    }
    // sent at +1,200 … +2,100: refused as replays until 1,000 ms after the last accepted (+1,900)
    expect(outcomes).toEqual([...Array(7).fill("replayed"), "ok", "ok", "ok"]);
    expect(v.restarts()).toBe(1);
  });

  it("a sender restarted after its clock stepped +10 s is accepted at once", () => {
    let t = NOW;
    const v = new ReportVerifier({ keys: ring(), now: () => t });
    let wall = NOW;
    const first = sequenceCounter(() => wall);
    for (let i = 0; i < 10; i++, t += 100, wall += 100)
      expect(
        v.verify(encodeReport(report({ sequence: first(), timestampMs: wall }), KEY_A)).ok,
      ).toBe(true);
    wall += 10_300;
    t += 300;
    const second = sequenceCounter(() => wall);
    expect(
      v.verify(encodeReport(report({ sequence: second(), timestampMs: wall }), KEY_A)).ok,
    ).toBe(true);
    expect(v.restarts()).toBe(0);
  });

  it("directives reach an agent whose clock steps either way", () => {
    let t = NOW;
    const dv = new DirectiveVerifier({ keys: ring(), now: () => t });
    const seq = sequenceCounter(() => NOW);
    const directive = (ts: number) =>
      encodeDirective(
        {
          partitionIndex: 0,
          sequence: seq(),
          timestampMs: ts,
          cpuMillis: 500,
          weight: 100,
          cpuCount: 1,
        },
        KEY_A,
      );
    let ok = 0;
    for (let i = 0; i < 30; i++) {
      if (i === 10) t += 10_000;
      if (i === 20) t -= 20_000;
      if (dv.verify(directive(NOW + i * 100)).ok) ok++;
      t += 100;
    }
    expect(ok).toBe(30);
  });
});

describe("the silence a new run needs follows the sender's cadence", () => {
  const directive = (sequence: number, timestampMs: number, cpuMillis: number) =>
    encodeDirective(
      { partitionIndex: 0, sequence, timestampMs, cpuMillis, weight: 100, cpuCount: 1 },
      KEY_A,
    );

  it("refuses a directive replayed just over a second after each of a once-a-second sender's", () => {
    // The manager re-sends an unchanged directive every DIRECTIVE_REFRESH_MS (1 s, here 1.0–1.1 s
    // apart). With a fixed 1 s restart window, a captured "cap 0" replayed 1,003 ms after each
    // real directive started a new run and was applied (found against a real agent).
    let t = NOW;
    const v = new DirectiveVerifier({ keys: ring(), now: () => t });
    const seq = sequenceCounter(() => t);
    const captured = directive(seq(), t, 0);
    expect(v.verify(captured).ok).toBe(true);
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      t += 1000 + (i % 3) * 50;
      expect(v.verify(directive(seq(), t, 500)).ok).toBe(true);
      t += 1003;
      const r = v.verify(captured);
      outcomes.push(r.ok ? "ok" : r.reason);
      t -= 1003; // the next real directive comes 1.0–1.1 s after the last real one
    }
    expect(outcomes).toEqual(Array(20).fill("replayed"));
    // the first gap (1,000 ms, before any cadence is known) starts a run; none after it
    expect(v.restarts()).toBe(1);
  });

  it("refuses a report replayed between the reports of an agent that reports every 1.5 s", () => {
    let t = NOW;
    const v = new ReportVerifier({ keys: ring(), now: () => t });
    const seq = sequenceCounter(() => t);
    const first = encodeReport(report({ sequence: seq(), timestampMs: t }), KEY_A);
    expect(v.verify(first).ok).toBe(true);
    let replays = 0;
    for (let i = 0; i < 10; i++) {
      t += 1500;
      expect(v.verify(encodeReport(report({ sequence: seq(), timestampMs: t }), KEY_A)).ok).toBe(
        true,
      );
      t += 1200;
      const r = v.verify(first);
      if (!r.ok && r.reason === "replayed") replays++;
      t -= 1200;
    }
    expect(replays).toBe(10);
  });

  it("takes a once-a-second sender restarted with its clock 10 s back after four of its gaps", () => {
    let t = NOW;
    const v = new DirectiveVerifier({ keys: ring(), now: () => t });
    let wall = NOW;
    const first = sequenceCounter(() => wall);
    for (let i = 0; i < 5; i++, t += 1000, wall += 1000)
      expect(v.verify(directive(first(), wall, 500)).ok).toBe(true);
    // last accepted at NOW + 4,000; restarted with its clock 10 s back, sending every 500 ms
    wall -= 10_000;
    const second = sequenceCounter(() => wall);
    const acceptedAfterMs: number[] = [];
    for (let i = 0; i < 20; i++, t += 500, wall += 500)
      if (v.verify(directive(second(), wall, 500)).ok) acceptedAfterMs.push(t - (NOW + 4000));
    // sent 1,000 … 10,500 ms after the last accepted: refused until four gaps of 1,000 ms
    // (decayed over the silence: 3.83 s), then every one
    expect(acceptedAfterMs[0]).toBe(4000);
    expect(acceptedAfterMs).toHaveLength(14);
    // the first gap (1,000 ms, before any cadence is known) started a run too
    expect(v.restarts()).toBe(2);
  });

  it("learns the gap from rising sequences, forgets it at half weight a minute, not from a restart's silence", () => {
    expect(recentGapMs(0, 1000, true)).toBe(1000);
    expect(recentGapMs(1000, 100, true)).toBeCloseTo(1000 * 2 ** (-100 / GAP_HALF_LIFE_MS), 9);
    // a lower sequence after a minute's silence (a restart): not the sender's cadence
    expect(recentGapMs(1000, 60_000, false)).toBeCloseTo(500, 9);
    expect(recentGapMs(1000, -5000, true)).toBe(1000);
    // an agent reporting every 100 ms after a 4.5 s pause (SIGSTOP, a VM paused): a new run
    // needs 18 s of silence, half that a minute on, the 1 s floor after five minutes
    let gap = recentGapMs(100, 4500, true);
    expect(RESTART_GAP_FACTOR * gap).toBe(18_000);
    for (let i = 0; i < 600; i++) gap = recentGapMs(gap, 100, true);
    expect(RESTART_GAP_FACTOR * gap).toBeCloseTo(9000, 6);
    for (let i = 0; i < 2400; i++) gap = recentGapMs(gap, 100, true);
    expect(RESTART_GAP_FACTOR * gap).toBeLessThan(RESTART_AFTER_MS);
  });

  it("needs at most a few minutes of silence for a new run, even after an hour-long gap", () => {
    const hour = 3_600_000;
    expect(continuesRun(999, 0, RESTART_AFTER_MS)).toBe(true);
    expect(continuesRun(1000, 0, RESTART_AFTER_MS)).toBe(false);
    expect(continuesRun(-5000, hour, RESTART_AFTER_MS)).toBe(true);
    // four gaps of 1 s, decayed over the silence itself: 3.83 s
    expect(continuesRun(3800, 1000, RESTART_AFTER_MS)).toBe(true);
    expect(continuesRun(3850, 1000, RESTART_AFTER_MS)).toBe(false);
    expect(continuesRun(5 * 60_000, hour, RESTART_AFTER_MS)).toBe(true);
    expect(continuesRun(6 * 60_000, hour, RESTART_AFTER_MS)).toBe(false);
  });
});
