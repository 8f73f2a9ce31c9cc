import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../src/core/model.ts";
import { fmtStats, stats } from "./harness.ts";
import { reactionMs, rotate } from "./real-common.ts";

const rec = (
  t: number,
  cpuMillis: number,
): Pick<CycleRecord, "startedAtMs" | "timingsMs" | "partitions"> => ({
  startedAtMs: t,
  timingsMs: { sample: 0, reports: 0, policy: 0, apply: 0, total: 2 },
  partitions: [
    {
      id: "a",
      status: "ok",
      throughput: null,
      decision: null,
      directive: {
        partition: "a",
        cpuMillis,
        weight: 100,
        idle: false,
        capCpuMillis: Number.POSITIVE_INFINITY,
        burstCpuMillis: 0,
        capReason: null,
        cpuCount: 1,
      },
      written: [],
    },
  ],
});

describe("real-benchmark helpers", () => {
  it("median and range ignore non-finite values", () => {
    expect(stats([3, 1, Number.NaN, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(stats([4, 1, 2, 3])?.median).toBe(2.5);
    expect(stats([Number.NaN])).toBeNull();
    expect(fmtStats([0.01, 0.03, 0.02], 1, 100)).toBe("2.0 [1.0–3.0]");
    expect(fmtStats([5], 0)).toBe("5 [5]");
    expect(fmtStats([])).toBe("–");
  });

  it("rotates the policy order by the repetition", () => {
    expect(rotate(["a", "b", "c"], 0)).toEqual(["a", "b", "c"]);
    expect(rotate(["a", "b", "c"], 1)).toEqual(["b", "c", "a"]);
    expect(rotate(["a", "b", "c"], 4)).toEqual(["b", "c", "a"]);
  });

  it("reaction: step to the first applied record at 90 % of the rise", () => {
    // 100m before the step at t=1000; rises 400, 900, 1000 then stays at 1000.
    const records = [
      ...[0, 100, 200, 300, 400, 500, 600, 700, 800, 900].map((t) => rec(t, 100)),
      rec(1000, 100),
      rec(1100, 400),
      rec(1200, 900),
      rec(1300, 950),
      ...[1400, 1500, 1600, 1700, 1800, 1900, 2000].map((t) => rec(t, 1000)),
    ];
    const r = reactionMs(records, "a", 1000, {
      beforeMs: 1000,
      settledFromMs: 1500,
      minRiseMillis: 50,
    });
    // 90 % of 100 -> 1000 is 910: first reached by the record at 1300 (+2 ms apply).
    expect(r).toEqual({ ms: 302, fromMillis: 100, toMillis: 1000, stepAtMs: 1000 });
    // No rise: levels, no reaction time.
    const flat = [0, 500, 1000, 1500, 2000].map((t) => rec(t, 100));
    expect(
      reactionMs(flat, "a", 1000, { beforeMs: 1000, settledFromMs: 1500, minRiseMillis: 50 }),
    ).toEqual({ ms: null, fromMillis: 100, toMillis: 100, stepAtMs: 1000 });
    expect(
      reactionMs([], "a", 1000, { beforeMs: 1000, settledFromMs: 1500, minRiseMillis: 50 }),
    ).toBeNull();
  });
});
