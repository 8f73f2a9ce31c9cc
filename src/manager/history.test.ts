import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../core/model.ts";
import {
  CycleHistory,
  DEFAULT_HISTORY_MAX_BYTES,
  DEFAULT_HISTORY_SIZE,
  estimateRecordBytes,
  RECORD_BYTES,
} from "./history.ts";

/** A record of `n` partitions, each with a throughput and nothing else. */
function record(cycle: number, n: number): CycleRecord {
  return {
    cycle,
    startedAtMs: cycle * 100,
    intervalMs: 100,
    capacityCpuMillis: 2000,
    partitions: Array.from({ length: n }, (_, i) => ({
      id: `p${i}`,
      status: "ok" as const,
      throughput: {
        partition: `p${i}`,
        windowMs: 100,
        offeredPacketsPerSec: 10,
        servedPacketsPerSec: 10,
        droppedPacketsPerSec: 0,
        cpuCores: 0.1,
        throttledFraction: 0,
        rawVelocityPacketsPerCpuSec: 100,
        source: "host" as const,
      },
      decision: null,
      directive: null,
      written: [],
    })),
    timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 0 },
  };
}

describe("estimateRecordBytes", () => {
  it("adds each part's bytes per partition", () => {
    const per = RECORD_BYTES.entry + RECORD_BYTES.throughput;
    expect(estimateRecordBytes(record(1, 0))).toBe(RECORD_BYTES.record);
    expect(estimateRecordBytes(record(1, 10))).toBe(RECORD_BYTES.record + 10 * per);
    const r = record(1, 1);
    r.partitions[0]!.written = ["cpu.shares", "cpu.cfs_quota_us"];
    r.partitions[0]!.error = { code: "X", message: "m", retryable: true };
    expect(estimateRecordBytes(r)).toBe(
      RECORD_BYTES.record + per + 2 * RECORD_BYTES.written + RECORD_BYTES.error,
    );
  });
});

describe("CycleHistory defaults", () => {
  it("holds 600 records and 4 MiB: fewer records as partitions grow, the latest alone when it is over", () => {
    expect(DEFAULT_HISTORY_SIZE).toBe(600);
    expect(DEFAULT_HISTORY_MAX_BYTES).toBe(4 * 2 ** 20);
    const fill = (n: number, cycles: number) => {
      const h = new CycleHistory();
      for (let c = 1; c <= cycles; c++) h.push(record(c, n));
      return h;
    };
    expect(fill(1, 700).length).toBe(600);
    const h100 = fill(100, 700);
    const per100 = estimateRecordBytes(record(1, 100));
    expect(h100.length).toBe(Math.floor(DEFAULT_HISTORY_MAX_BYTES / per100));
    expect(h100.bytes).toBeLessThanOrEqual(DEFAULT_HISTORY_MAX_BYTES);
    const big = fill(20_000, 3);
    expect(estimateRecordBytes(record(1, 20_000))).toBeGreaterThan(DEFAULT_HISTORY_MAX_BYTES);
    expect(big.list().map((r) => r.cycle)).toEqual([3]);
  });
});

describe("CycleHistory", () => {
  it("keeps at most maxRecords, oldest dropped first", () => {
    const h = new CycleHistory({ maxRecords: 3, maxBytes: Number.POSITIVE_INFINITY });
    for (let c = 1; c <= 10; c++) h.push(record(c, 2));
    expect(h.list().map((r) => r.cycle)).toEqual([8, 9, 10]);
    expect(h.length).toBe(3);
    expect(h.bytes).toBe(3 * estimateRecordBytes(record(0, 2)));
  });

  it("keeps at most maxBytes of records, so fewer records as partitions grow", () => {
    const small = estimateRecordBytes(record(0, 10));
    const h = new CycleHistory({ maxRecords: 600, maxBytes: 50 * small });
    for (let c = 1; c <= 200; c++) h.push(record(c, 10));
    expect(h.length).toBe(50);
    expect(h.bytes).toBeLessThanOrEqual(50 * small);
    // ten times the partitions: a tenth of the records (the bound holds after every push)
    for (let c = 201; c <= 260; c++) {
      h.push(record(c, 100));
      expect(h.bytes).toBeLessThanOrEqual(50 * small);
    }
    expect(h.length).toBe(Math.floor((50 * small) / estimateRecordBytes(record(0, 100))));
    expect(h.list().at(-1)!.cycle).toBe(260);
  });

  it("always keeps the newest record, even one larger than the bound", () => {
    const h = new CycleHistory({ maxBytes: 10 });
    h.push(record(1, 5));
    h.push(record(2, 5));
    expect(h.list().map((r) => r.cycle)).toEqual([2]);
  });

  it("hands out a copy, oldest first, and stays in order across many pushes", () => {
    const h = new CycleHistory({ maxRecords: 7, maxBytes: Number.POSITIVE_INFINITY });
    for (let c = 1; c <= 1000; c++) h.push(record(c, 1));
    const list = h.list();
    expect(list.map((r) => r.cycle)).toEqual([994, 995, 996, 997, 998, 999, 1000]);
    list.pop();
    expect(h.length).toBe(7);
  });
});
