import { describe, expect, it } from "vitest";
import { driftCells, slowestAndFastest } from "./reaction-real.ts";

describe("reaction-real's per-repetition figures", () => {
  it("slowestAndFastest: not reached counts as slowest; one index when they are the same", () => {
    expect(slowestAndFastest([300, Number.NaN, 90, 500])).toEqual([1, 2]);
    expect(slowestAndFastest([200, 900, 100])).toEqual([1, 2]);
    expect(slowestAndFastest([150])).toEqual([0]);
    expect(slowestAndFastest([])).toEqual([]);
  });

  it("driftCells: the early entitlement, the velocity's drift and the late drops, or dashes", () => {
    expect(
      driftCells({
        earlyVelocityPps: 11296.4,
        lateVelocityPps: 6129,
        earlyMillis: 439.2,
        lateDroppedPps: 0,
        probes: 0,
      }),
    ).toEqual([439, "11296 → 6129 (× 0.54)", 0]);
    expect(
      driftCells({
        earlyVelocityPps: Number.NaN,
        lateVelocityPps: 7000,
        earlyMillis: Number.NaN,
        lateDroppedPps: 869.6,
        probes: 2,
      }),
    ).toEqual(["–", "–", 870]);
    expect(driftCells(null)).toEqual(["–", "–", "–"]);
  });
});
