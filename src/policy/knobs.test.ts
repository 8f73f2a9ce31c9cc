import { describe, expect, it } from "vitest";
import { checkRule } from "../core/bounds.ts";
import {
  defaultKnobSettings,
  defaultPolicyKnobs,
  KNOB_KEYS,
  POLICY_KNOBS,
  policyKnobsFrom,
} from "./knobs.ts";

describe("POLICY_KNOBS", () => {
  it("gives the defaults the policy has always had", () => {
    expect(defaultPolicyKnobs(2000)).toEqual({
      capacityCpuMillis: 2000,
      headroomFraction: 0.2,
      probeFactor: 1.5,
      deadbandFraction: 0.01,
      maxShrinkFractionPerCycle: 0.1,
      smoothingUp: 0.7,
      smoothingDown: 0.2,
      velocitySmoothing: 0.3,
      throttledThreshold: 0.05,
      cpuDelayThreshold: 0.5,
      weightDeadbandFraction: 0.15,
      goalHeadroomFraction: 0.05,
      goalCycleFraction: 0,
      openLoopGoalCycleFraction: 0.99,
      donorCapPeriodMs: 100,
      donorCapMarginFraction: 0.01,
      burstFraction: 1,
      suppressBatchAfterCycles: 10,
      releaseBatchAfterCycles: 10,
      leftover: "batch-first",
    });
  });

  it("declares each policy field once, and every default keeps its own rule", () => {
    const fields = KNOB_KEYS.map((k) => POLICY_KNOBS[k].field);
    expect(new Set(fields).size).toBe(fields.length);
    expect(fields.sort()).toEqual(
      Object.keys(defaultPolicyKnobs(1000))
        .filter((f) => f !== "capacityCpuMillis")
        .sort(),
    );
    for (const key of KNOB_KEYS) {
      const knob = POLICY_KNOBS[key];
      expect(checkRule(key, knob.rule, knob.default), key).toBeNull();
      expect(knob.description.length, key).toBeGreaterThan(0);
    }
  });

  it("maps config keys to policy fields", () => {
    const knobs = policyKnobsFrom(
      { ...defaultKnobSettings(), headroom: 0.3, goalHeadroom: 0.1, weightDeadband: 0.2 },
      1500,
    );
    expect(knobs).toMatchObject({
      capacityCpuMillis: 1500,
      headroomFraction: 0.3,
      goalHeadroomFraction: 0.1,
      weightDeadbandFraction: 0.2,
    });
  });
});
