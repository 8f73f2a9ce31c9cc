import { describe, expect, it } from "vitest";
import type { Directive } from "../core/model.ts";
import { v1Format, v2Format } from "./formats.ts";
import {
  MIN_QUOTA_USEC,
  quotaFloorCpuMillis,
  quotaUsecForCap,
  sharesToWeight,
  weightToShares,
} from "./values.ts";

const directive = (cpuMillis: number, weight: number): Directive => ({
  partition: "p",
  cpuMillis,
  weight,
  idle: false,
  capCpuMillis: cpuMillis,
  burstCpuMillis: 0,
  capReason: "capped",
  cpuCount: 1,
});

describe("weight <-> shares (the kernel's 1024 : 100 conversion)", () => {
  it("maps defaults to defaults and keeps ratios", () => {
    expect(weightToShares(100)).toBe(1024); // 100 * 1024 / 100
    expect(weightToShares(200)).toBe(2048); // 200 * 1024 / 100
    expect(weightToShares(50)).toBe(512); // 50 * 1024 / 100
    expect(weightToShares(1)).toBe(10); // round(10.24)
    expect(weightToShares(3)).toBe(31); // round(30.72)
    expect(weightToShares(10_000)).toBe(102_400); // 10000 * 10.24
  });

  it("clamps weights outside 1..10000 and rounds fractions", () => {
    expect(weightToShares(0)).toBe(10); // clamped to 1 -> 10
    expect(weightToShares(99_999)).toBe(102_400); // clamped to 10000
    expect(weightToShares(150.4)).toBe(1536); // round -> 150 -> 1536
  });

  it("converts shares back the kernel's way", () => {
    expect(sharesToWeight(1024)).toBe(100);
    expect(sharesToWeight(2)).toBe(1); // round(0.195) = 0 -> clamped to 1
    expect(sharesToWeight(262_144)).toBe(10_000); // 25600 -> clamped to 10000
    expect(sharesToWeight(2597)).toBe(254); // round(253.6): the OCI map's "100" is not 100 here
  });

  it("round-trips every weight 1..10000 exactly", () => {
    for (let w = 1; w <= 10_000; w++) {
      if (sharesToWeight(weightToShares(w)) !== w)
        throw new Error(`weight ${w} does not round-trip`);
    }
  });
});

describe("quota for a cap", () => {
  it("is cpuMillis * period / 1000, raised to 1000 us, null when unlimited", () => {
    expect(quotaUsecForCap(250, 100_000)).toBe(25_000); // 250 * 100000 / 1000
    expect(quotaUsecForCap(1500, 50_000)).toBe(75_000); // 1500 * 50000 / 1000
    expect(quotaUsecForCap(333.3, 100_000)).toBe(33_330); // round(33330)
    expect(quotaUsecForCap(5, 100_000)).toBe(MIN_QUOTA_USEC); // 500 -> 1000
    expect(quotaUsecForCap(0, 100_000)).toBe(1000);
    expect(quotaUsecForCap(-5, 100_000)).toBe(1000);
    expect(quotaUsecForCap(Number.POSITIVE_INFINITY, 100_000)).toBeNull();
  });
});

describe("v1 format", () => {
  it("writes quota at the period found at open (or the directive's) and shares", () => {
    const cur = { "cpu.cfs_period_us": "50000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024" };
    expect(v1Format.desired(directive(250, 200), cur, 50_000)).toEqual({
      "cpu.cfs_period_us": "50000",
      "cpu.cfs_quota_us": "12500", // 250 * 50000 / 1000
      "cpu.shares": "2048",
    });
    expect(v1Format.desired(directive(Number.POSITIVE_INFINITY, 100), cur, 50_000)).toEqual({
      "cpu.cfs_period_us": "50000",
      "cpu.cfs_quota_us": "-1",
      "cpu.shares": "1024",
    });
    // a directive's own period: 800m over 500 ms is a 400,000 us quota
    expect(v1Format.desired({ ...directive(800, 100), capPeriodUs: 500_000 }, cur, 50_000)).toEqual(
      {
        "cpu.cfs_period_us": "500000",
        "cpu.cfs_quota_us": "400000", // 800 * 500000 / 1000
        "cpu.shares": "1024",
      },
    );
  });

  it("orders period and quota so no pair in between claims more than either end", () => {
    const cur = {
      "cpu.cfs_period_us": "100000",
      "cpu.cfs_quota_us": "80000",
      "cpu.shares": "1024",
    };
    // 100 ms -> 500 ms: the period first (80,000 us of 500 ms is 16 %, under both ends' 80 %)
    const longer = v1Format.desired({ ...directive(800, 100), capPeriodUs: 500_000 }, cur, 100_000);
    expect(v1Format.plan(longer, cur)).toEqual([
      "cpu.cfs_period_us",
      "cpu.cfs_quota_us",
      "cpu.shares",
    ]);
    // 500 ms -> 100 ms: the quota first (80,000 us of 500 ms, 16 %), then the period; the
    // other order would hold 400,000 us per 100 ms, 4 CPUs, for a moment
    const at500 = { ...cur, "cpu.cfs_period_us": "500000", "cpu.cfs_quota_us": "400000" };
    const back = v1Format.desired(directive(800, 100), at500, 100_000);
    expect(back["cpu.cfs_period_us"]).toBe("100000");
    expect(v1Format.plan(back, at500)).toEqual([
      "cpu.cfs_quota_us",
      "cpu.cfs_period_us",
      "cpu.shares",
    ]);
  });

  it("validates found values, naming the file and the value", () => {
    expect(v1Format.validate(v1Format.freshValues)).toBeNull();
    expect(v1Format.validate({ ...v1Format.freshValues, "cpu.cfs_period_us": "abc" })).toBe(
      'cpu.cfs_period_us must be an integer 1000..1000000: found "abc"',
    );
    expect(v1Format.validate({ ...v1Format.freshValues, "cpu.cfs_quota_us": "-7" })).toMatch(
      /cpu.cfs_quota_us .* found "-7"/,
    );
  });

  it("describes values on common scales", () => {
    expect(
      v1Format.describe({
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "25000",
        "cpu.shares": "2048",
      }),
    ).toEqual({ quotaUsec: 25_000, periodUsec: 100_000, weight: 200 });
  });
});

describe("v2 format", () => {
  it("writes cpu.max with the period found at open (or the directive's), and the weight as is", () => {
    const cur = { "cpu.max": "max 20000", "cpu.weight": "100" };
    expect(v2Format.desired(directive(250, 200), cur, 20_000)).toEqual({
      "cpu.max": "5000 20000", // 250 * 20000 / 1000
      "cpu.weight": "200",
    });
    expect(v2Format.desired(directive(Number.POSITIVE_INFINITY, 10), cur, 20_000)).toEqual({
      "cpu.max": "max 20000",
      "cpu.weight": "10",
    });
    // one file holds both: quota and period change in one write
    expect(v2Format.desired({ ...directive(800, 200), capPeriodUs: 500_000 }, cur, 20_000)).toEqual(
      { "cpu.max": "400000 500000", "cpu.weight": "200" },
    ); // 800 * 500000 / 1000
  });

  it("validates found values", () => {
    expect(v2Format.validate({ "cpu.max": "max 100000", "cpu.weight": "100" })).toBeNull();
    expect(v2Format.validate({ "cpu.max": "max", "cpu.weight": "100" })).toMatch(/found "max"/);
    expect(v2Format.validate({ "cpu.max": "max 100000", "cpu.weight": "0" })).toMatch(
      /cpu.weight must be an integer 1..10000: found "0"/,
    );
  });

  it("describes values on common scales", () => {
    expect(v2Format.describe({ "cpu.max": "50000 100000", "cpu.weight": "50" })).toEqual({
      quotaUsec: 50_000,
      periodUsec: 100_000,
      weight: 50,
    });
    expect(
      v2Format.describe({ "cpu.max": "max 100000", "cpu.weight": "100" }).quotaUsec,
    ).toBeNull();
  });
});

describe("batch, burst and write order", () => {
  const batch: Directive = {
    ...directive(Number.POSITIVE_INFINITY, 1),
    idle: true,
    capReason: null,
  };
  const v1NoIdle = {
    "cpu.cfs_period_us": "100000",
    "cpu.cfs_quota_us": "-1",
    "cpu.shares": "1024",
  };

  it("batch is the idle class where the cgroup has cpu.idle, else the smallest weight", () => {
    expect(v1Format.desired(batch, v1Format.freshValues, 100_000)).toMatchObject({
      "cpu.idle": "1",
    });
    // no cpu.idle (a kernel before 5.15): v1's smallest shares, 2; nothing about idle
    expect(v1Format.desired(batch, v1NoIdle, 100_000)).toEqual({
      "cpu.cfs_period_us": "100000",
      "cpu.cfs_quota_us": "-1",
      "cpu.shares": "2",
    });
    expect(
      v2Format.desired(batch, { "cpu.max": "max 100000", "cpu.weight": "100" }, 100_000),
    ).toEqual({
      "cpu.max": "max 100000",
      "cpu.weight": "1",
    });
  });

  it("plans the burst before the quota when it shrinks, and no weight for an idle group", () => {
    const cur = {
      ...v1Format.freshValues,
      "cpu.cfs_quota_us": "50000",
      "cpu.cfs_burst_us": "50000",
    };
    // 200m cap + 200m burst at 100 ms: 20000 us each; the burst shrinks, so it goes first
    // (the period, unchanged, is listed first and skipped by the engine)
    const shrink = v1Format.desired({ ...directive(200, 100), burstCpuMillis: 200 }, cur, 100_000);
    expect(v1Format.plan(shrink, cur)).toEqual([
      "cpu.cfs_period_us",
      "cpu.cfs_burst_us",
      "cpu.cfs_quota_us",
      "cpu.idle",
      "cpu.shares",
    ]);
    // growing: the quota first
    const grow = v1Format.desired({ ...directive(800, 100), burstCpuMillis: 800 }, cur, 100_000);
    expect(v1Format.plan(grow, cur)).toEqual([
      "cpu.cfs_period_us",
      "cpu.cfs_quota_us",
      "cpu.cfs_burst_us",
      "cpu.idle",
      "cpu.shares",
    ]);
    // entering the idle class: the weight is left out (the kernel refuses it: EINVAL)
    const idle = v1Format.desired(batch, v1Format.freshValues, 100_000);
    expect(v1Format.plan(idle, v1Format.freshValues)).not.toContain("cpu.shares");
  });
});

describe("quotaFloorCpuMillis", () => {
  it("is the 1000 us minimum quota as millicores at the period", () => {
    expect(quotaFloorCpuMillis(100_000)).toBe(10); // 1000 * 1000 / 100000
    expect(quotaFloorCpuMillis(50_000)).toBe(20); // 1000 * 1000 / 50000
    expect(quotaFloorCpuMillis(1000)).toBe(1000); // the shortest period: a whole CPU
    expect(quotaFloorCpuMillis(300_000)).toBe(4); // 3.33 rounded up
    // what quotaUsecForCap writes for a 0m cap is exactly the floor
    expect(quotaUsecForCap(0, 100_000)).toBe((quotaFloorCpuMillis(100_000) * 100_000) / 1000);
  });
});
