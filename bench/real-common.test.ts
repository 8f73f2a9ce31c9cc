import { describe, expect, it } from "vitest";
import type { CycleRecord } from "../src/core/model.ts";
import { VM_DEMO_GROUP_CPU_SHARES } from "../src/demo/vm.ts";
import { fmtStats, stats } from "./harness.ts";
import {
  fmtStepDrift,
  fmtStepTrace,
  GROUP_CPU_SHARES,
  reactionMs,
  rotate,
  type StepTraceRow,
  stepDrift,
  stepTrace,
} from "./real-common.ts";

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
  it("weir demo --vm and vm-balance give their partitions' group the real benchmarks' cpu.shares", () => {
    expect(VM_DEMO_GROUP_CPU_SHARES).toBe(GROUP_CPU_SHARES);
  });

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

  it("step trace: a's cycles from the last one before the step to the reaction", () => {
    const at = (t: number, usedCores: number, cpuMillis: number, idle: number | null) => {
      const r = rec(t, cpuMillis);
      const p = r.partitions[0]!;
      p.throughput = {
        partition: "a",
        windowMs: 100,
        offeredPacketsPerSec: t < 1000 ? 500 : 9000,
        servedPacketsPerSec: 500,
        droppedPacketsPerSec: 0,
        cpuCores: usedCores,
        throttledFraction: 0,
        rawVelocityPacketsPerCpuSec: null,
        cpuDelayFraction: t < 1000 ? null : 0.125,
        source: "host",
      };
      p.decision = {
        partition: "a",
        demandCpuMillis: cpuMillis + 0.4,
        previousCpuMillis: 0,
        cpuMillis,
        velocityPacketsPerCpuSec: null,
        performanceIndex: null,
        why: "",
      };
      return {
        ...r,
        host:
          idle === null ? null : { cpus: 2, idleFraction: idle, busyCores: 0, stealFraction: 0 },
      };
    };
    const records = [
      at(800, 0.05, 60, 0.5),
      at(900, 0.05, 60, 0.5),
      at(1000, 0.4, 480, 0.01),
      at(1100, 0.8, 960, null),
      at(1200, 0.8, 960, 0),
    ];
    // step at 950: the record ending at 902 is the last before it; until 1102
    const rows = stepTrace(records, "a", 950, 1102);
    expect(rows.map((r) => r.atMs)).toEqual([-48, 52, 152]);
    expect(rows[1]).toEqual({
      atMs: 52,
      usedMillis: 400,
      cpuDelayPercent: 13,
      offeredPps: 9000,
      servedPps: 500,
      servedPercent: 6,
      droppedPps: 0,
      throttledPercent: 0,
      velocityPps: null,
      demandMillis: 480,
      cpuMillis: 480,
      weight: 100,
      hostIdlePercent: 1,
      why: "",
    });
    expect(rows[2]!.hostIdlePercent).toBeNull();
    expect(fmtStepTrace(rows.slice(0, 2))).toBe(
      "-48 ms: offered 500/s, served 500/s (100 %), dropped 0/s, throttled 0 %, uses 50m, delay ? %, velocity ?/cpu-s, demand 60m, entitlement 60m, weight 100, host idle 50 %; +52 ms: offered 9000/s, served 500/s (6 %), dropped 0/s, throttled 0 %, uses 400m, delay 13 %, velocity ?/cpu-s, demand 480m, entitlement 480m, weight 100, host idle 1 %",
    );
    expect(fmtStepTrace(rows.slice(1, 2), { why: true })).toContain('host idle 1 % — ""');
  });

  it("stepDrift: a's velocity and entitlement early after the step against the settled window, its drops there, its probes", () => {
    const row = (
      atMs: number,
      velocityPps: number | null,
      cpuMillis: number,
      droppedPps: number,
      why = "",
    ): StepTraceRow => ({
      atMs,
      usedMillis: 0,
      cpuDelayPercent: null,
      offeredPps: 0,
      servedPps: 0,
      servedPercent: null,
      droppedPps,
      throttledPercent: 0,
      velocityPps,
      demandMillis: null,
      cpuMillis,
      weight: null,
      hostIdlePercent: null,
      why,
    });
    const rows = [
      row(-50, 6000, 100, 0), // before the step: in neither window
      row(100, 8000, 400, 0, "probing upward"), // after the step, before the early window
      row(300, 10000, 600, 0), // the early window is [300, 1500)
      row(700, 12000, 650, 5),
      row(1100, null, 700, 0), // no velocity: left out of the velocity's median only
      row(1500, 9000, 800, 0), // between the windows
      row(3000, 7000, 900, 100), // the settled window: from 3000 on
      row(3100, 5000, 1000, 300),
    ];
    // the load ends 4,500 ms after the step: the settled window is its last 1.5 s, from 3,000 on
    const d = stepDrift(rows, 4500);
    expect(d).toEqual({
      earlyVelocityPps: 11000,
      lateVelocityPps: 6000,
      earlyMillis: 650,
      lateDroppedPps: 200,
      probes: 1,
    });
    expect(fmtStepDrift(d)).toBe(
      "velocity 11000 pkt/cpu-s at +0.3–1.5 s, 6000 in the last 1.5 s (× 0.55), entitlement 650m at +0.3–1.5 s, 200 drops/s in the last 1.5 s, 1 probe after the step",
    );
    // no cycle in a window: NaN, not a number made up
    expect(stepDrift(rows.slice(0, 2), 4500).earlyMillis).toBeNaN();
  });
});
