import { describe, expect, it } from "vitest";
import {
  bracketPlan,
  counterRate,
  meetsGoalTargets,
  pairEfficiency,
  parseCounter,
  planGoal,
  scoreRun,
  surplusAtGoal,
} from "./goals-real-math.ts";

describe("planGoal", () => {
  it("puts the goal at the fraction of solo packets/s and the surplus at the rest, in both units", () => {
    // 2 packets per reply solo: 1,000 replies/s = 2,000 packets/s.
    const p = planGoal({ requestsPerSec: 1000, packetsPerSec: 2000 }, 0.8);
    expect(p.goalPacketsPerSec).toBe(1600);
    expect(p.goalRequestsPerSec).toBeCloseTo(800, 9);
    expect(p.surplusPacketsPerSec).toBe(400);
    expect(p.surplusRequestsPerSec).toBeCloseTo(200, 9);
  });
  it("rounds the goal to whole packets/s and keeps goal + surplus = solo", () => {
    const p = planGoal({ requestsPerSec: 777, packetsPerSec: 1234.5 }, 0.8);
    expect(p.goalPacketsPerSec).toBe(988);
    expect(p.goalPacketsPerSec + p.surplusPacketsPerSec).toBeCloseTo(1234.5, 9);
    expect(p.goalRequestsPerSec + p.surplusRequestsPerSec).toBeCloseTo(777, 9);
  });
  it("names the field and value of bad input", () => {
    expect(() => planGoal({ requestsPerSec: 0, packetsPerSec: 10 }, 0.8)).toThrow(
      /solo.requestsPerSec .* got 0/,
    );
    expect(() => planGoal({ requestsPerSec: 5, packetsPerSec: Number.NaN }, 0.8)).toThrow(
      /solo.packetsPerSec .* got NaN/,
    );
    expect(() => planGoal({ requestsPerSec: 5, packetsPerSec: 10 }, 1)).toThrow(
      /fraction .* got 1/,
    );
  });
});

describe("bracketPlan", () => {
  it("keeps the goal of the solo run before and counts the surplus from the mean of both", () => {
    const p = bracketPlan(
      { requestsPerSec: 1000, packetsPerSec: 2000 },
      { requestsPerSec: 900, packetsPerSec: 1800 },
      0.8,
    );
    // goal = 0.8 × 2,000 = 1,600 pps (what weir was given); solo = (2,000 + 1,800) ÷ 2 = 1,900
    // pps, (1,000 + 900) ÷ 2 = 950 replies/s: 2 packets per reply, goal 800 replies/s.
    expect(p.goalPacketsPerSec).toBe(1600);
    expect(p.goalRequestsPerSec).toBeCloseTo(800, 9);
    expect(p.surplusPacketsPerSec).toBeCloseTo(300, 9);
    expect(p.surplusRequestsPerSec).toBeCloseTo(150, 9);
    // B at 120 replies/s: 0.8 of this surplus, 0.6 of the 200 the solo run before leaves
    const b = { requestsPerSec: 120, packetsPerSec: 240 };
    const a = { requestsPerSec: 810, packetsPerSec: 1620 };
    expect(scoreRun(p, a, b).bOverSurplusRequests).toBeCloseTo(0.8, 9);
    expect(
      scoreRun(planGoal({ requestsPerSec: 1000, packetsPerSec: 2000 }, 0.8), a, b)
        .bOverSurplusRequests,
    ).toBeCloseTo(0.6, 9);
  });
  it("equals planGoal when the host did not drift", () => {
    const solo = { requestsPerSec: 777, packetsPerSec: 1234.5 };
    expect(bracketPlan(solo, solo, 0.8)).toEqual(planGoal(solo, 0.8));
  });
  it("names the field and value of a bad solo run after", () => {
    expect(() =>
      bracketPlan(
        { requestsPerSec: 5, packetsPerSec: 10 },
        { requestsPerSec: 0, packetsPerSec: 10 },
        0.8,
      ),
    ).toThrow(/after.requestsPerSec .* got 0/);
  });
});

describe("scoreRun", () => {
  const plan = planGoal({ requestsPerSec: 1000, packetsPerSec: 2000 }, 0.8);
  it("divides A by the goal and B by the surplus", () => {
    const s = scoreRun(
      plan,
      { requestsPerSec: 850, packetsPerSec: 1700 },
      // B sends 3 packets per reply: its packet ratio differs from its reply ratio.
      { requestsPerSec: 150, packetsPerSec: 450 },
    );
    expect(s.aOverGoal).toBeCloseTo(1700 / 1600, 9);
    expect(s.bOverSurplusRequests).toBeCloseTo(0.75, 9);
    expect(s.bOverSurplusPackets).toBeCloseTo(450 / 400, 9);
    expect(meetsGoalTargets(s)).toEqual({ a: true, b: true });
  });
  it("flags a missed goal, an overshoot and a starved B", () => {
    const miss = scoreRun(
      plan,
      { requestsPerSec: 500, packetsPerSec: 1000 },
      { requestsPerSec: 500, packetsPerSec: 1000 },
    );
    expect(meetsGoalTargets(miss).a).toBe(false);
    const over = scoreRun(
      plan,
      { requestsPerSec: 950, packetsPerSec: 1900 },
      { requestsPerSec: 50, packetsPerSec: 100 },
    );
    expect(meetsGoalTargets(over)).toEqual({ a: false, b: false });
  });
});

describe("what sharing leaves for B", () => {
  // solo 1,000 replies/s: goal 800, surplus 200
  const plan = planGoal({ requestsPerSec: 1000, packetsPerSec: 1000 }, 0.8);
  it("pair efficiency is both servers' replies over A's solo replies", () => {
    const a = { requestsPerSec: 830, packetsPerSec: 830 };
    const b = { requestsPerSec: 50, packetsPerSec: 50 };
    expect(pairEfficiency(plan, a, b)).toBeCloseTo(0.88, 9);
    // 880 served in all: with A at exactly 800, B could have had 80 = 0.4 of the surplus
    expect(surplusAtGoal(plan, a, b)).toBeCloseTo(0.4, 9);
  });
  it("B's 0.7 of the surplus beside A at its goal needs the pair at 94 % of A's solo rate", () => {
    const a = { requestsPerSec: 800, packetsPerSec: 800 };
    const b = { requestsPerSec: 140, packetsPerSec: 140 };
    expect(pairEfficiency(plan, a, b)).toBeCloseTo(0.94, 9);
    expect(surplusAtGoal(plan, a, b)).toBeCloseTo(0.7, 9);
  });
});

describe("counters", () => {
  it("turns two readings into a rate and refuses a counter that went backwards", () => {
    expect(counterRate(100, 1100, 500)).toBe(2000);
    expect(counterRate(100, 50, 500)).toBeNaN();
    expect(counterRate(1, 2, 0)).toBeNaN();
  });
  it("parses sysfs counter text and names the file of anything else", () => {
    expect(parseCounter("123456\n", "rx_packets")).toBe(123456);
    expect(() => parseCounter("abc", "/sys/x/rx_packets")).toThrow(/\/sys\/x\/rx_packets.*"abc"/);
  });
});
