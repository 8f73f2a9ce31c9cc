import { afterEach, describe, expect, it, vi } from "vitest";
import { stepFreeNowMs } from "./clock.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("stepFreeNowMs", () => {
  it("reads like the wall clock but does not follow a step of it", () => {
    const before = stepFreeNowMs();
    expect(Math.abs(before - Date.now())).toBeLessThan(1000); // same epoch (drift aside)
    const wall = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(wall + 10_000); // the wall clock steps +10 s
    const after = stepFreeNowMs();
    expect(after - before).toBeGreaterThanOrEqual(0);
    expect(after - before).toBeLessThan(1000);
    expect(Number.isInteger(after)).toBe(true);
  });
});
