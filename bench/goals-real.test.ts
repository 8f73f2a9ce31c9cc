import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../src/core/model.ts";
import { parsePoliciesOption, parseTraceOption, traceLine } from "./goals-real.ts";

describe("goals-real's options", () => {
  it("--trace FILE names the trace file; absent, none; without a file name, an error", () => {
    expect(parseTraceOption(["--reps", "3", "--trace", "/tmp/t.jsonl"])).toBe("/tmp/t.jsonl");
    expect(parseTraceOption(["--reps", "3"])).toBeUndefined();
    expect(() => parseTraceOption(["--trace"])).toThrow(/--trace: needs a file name/);
    expect(() => parseTraceOption(["--trace", "--json"])).toThrow(/--trace: needs a file name/);
  });

  it("--policies takes known run names only", () => {
    expect(parsePoliciesOption(["--policies", "weir,weir-untrimmed"])).toEqual([
      "weir",
      "weir-untrimmed",
    ]);
    expect(() => parsePoliciesOption(["--policies", "weir,bogus"])).toThrow(/got "bogus"/);
  });
});

describe("traceLine", () => {
  it("one cycle as one JSON line: per partition what weir read, set and wrote (no cap → null)", () => {
    const r = {
      cycle: 7,
      startedAtMs: 1234.6,
      intervalMs: 100,
      capacityCpuMillis: 1000,
      partitions: [
        {
          id: "a",
          status: "ok",
          throughput: {
            partition: "a",
            windowMs: 100,
            offeredPacketsPerSec: 9000,
            servedPacketsPerSec: 9090,
            droppedPacketsPerSec: 0,
            cpuCores: 0.76,
            throttledFraction: 1,
            rawVelocityPacketsPerCpuSec: 11_960,
            cpuDelayFraction: 0.2,
            source: "host",
          },
          decision: null,
          directive: {
            partition: "a",
            cpuMillis: 758,
            weight: 7580,
            idle: false,
            capCpuMillis: 758,
            burstCpuMillis: 0,
            capReason: "goal-donor",
            cpuCount: 1,
          },
          written: ["cpu.cfs_quota_us"],
        },
        {
          id: "b",
          status: "ok",
          throughput: null,
          decision: null,
          directive: {
            partition: "b",
            cpuMillis: 242,
            weight: 1210,
            idle: false,
            capCpuMillis: Number.POSITIVE_INFINITY,
            burstCpuMillis: 0,
            capReason: null,
            cpuCount: 1,
          },
          written: [],
        },
      ],
      timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 0 },
    } as unknown as CycleRecord;
    const line = traceLine("weir", 2, r);
    expect(line).not.toContain("\n");
    const o = JSON.parse(line);
    expect([o.policy, o.rep, o.startedAtMs]).toEqual(["weir", 2, 1235]);
    expect(o.partitions[0]).toMatchObject({
      id: "a",
      servedPacketsPerSec: 9090,
      cpuCores: 0.76,
      cpuMillis: 758,
      capCpuMillis: 758,
      capReason: "goal-donor",
      written: ["cpu.cfs_quota_us"],
    });
    // JSON has no Infinity: an uncapped partition's cap is null
    expect(o.partitions[1]).toMatchObject({ id: "b", capCpuMillis: null, capReason: null });
  });
});
