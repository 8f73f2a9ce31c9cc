import { describe, expect, it } from "vitest";
import { pairedRatio } from "./policy-step-ab.ts";

describe("pairedRatio", () => {
  it("separates after ÷ before from an effect of which build is loaded second", () => {
    // after 10 % faster, no order effect: 0.9 with before first, before ÷ after 1/0.9 the other way
    const none = pairedRatio(0.9, 1 / 0.9);
    expect(none.ratio).toBeCloseTo(0.9, 12);
    expect(none.orderEffect).toBeCloseTo(1, 12);
    // the same code, the second-loaded 5 % slower either way
    const order = pairedRatio(1.05, 1.05);
    expect(order.ratio).toBeCloseTo(1, 12);
    expect(order.orderEffect).toBeCloseTo(1.05, 12);
  });
});
