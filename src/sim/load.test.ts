import { describe, expect, it } from "vitest";
import { constant, diurnal, flashCrowd, meanRate, ramp, square, step, trace } from "./load.ts";

describe("load schedules", () => {
  it("step, ramp and square give the documented rates", () => {
    expect(constant(5)(123)).toBe(5);
    expect([step(1, 9, 100)(99), step(1, 9, 100)(100)]).toEqual([1, 9]);
    // ramp 0 -> 100 over [1000, 2000]: halfway at 1500 ms.
    expect([
      ramp(0, 100, 1000, 2000)(500),
      ramp(0, 100, 1000, 2000)(1500),
      ramp(0, 100, 1000, 2000)(9000),
    ]).toEqual([0, 50, 100]);
    const sq = square(1, 2, 1000);
    expect([sq(0), sq(499), sq(500), sq(999), sq(1000)]).toEqual([1, 1, 2, 2, 1]);
    expect(square(1, 2, 1000, 0.5)(0)).toBe(2);
  });

  it("a flash crowd decays back toward its base with the time constant", () => {
    const f = flashCrowd(100, 1100, 1000, 500);
    expect(f(999)).toBe(100);
    expect(f(1000)).toBe(1100);
    // one time constant later: 100 + 1000 / e = 467.9
    expect(f(1500)).toBeCloseTo(100 + 1000 / Math.E, 6);
  });

  it("a trace interpolates linearly and holds its ends; a diurnal day peaks at 20:00 and bottoms at 04:00", () => {
    const t = trace([
      [0, 10],
      [100, 30],
    ]);
    expect([t(-5), t(50), t(500)]).toEqual([10, 20, 30]);
    const day = diurnal(200, 2000, 24_000);
    expect(day(20_000)).toBe(2000);
    expect(day(4_000)).toBe(200);
    expect(diurnal(200, 2000, 24_000, 8)(12_000)).toBe(2000); // shifted 8 h: 20:00 happens at 12:00
    expect(meanRate(step(0, 10, 50), 0, 100)).toBe(5);
  });
});
