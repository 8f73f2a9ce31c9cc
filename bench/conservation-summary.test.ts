import { describe, expect, it } from "vitest";
import { hogShareOfLeftover } from "./conservation-summary.ts";

describe("conservation-real summary: the idle row's attribution", () => {
  it("gives the hog's share of the CPU that other work left, not of the whole host", () => {
    // 2 CPUs, 5 % idle (0.1 cores), the hog used 1.4 cores: others took 0.5, the hog had 1.4 of 1.5.
    expect(hogShareOfLeftover({ hogCores: 1.4, hostIdle: 0.05, hostCpus: 2 })).toBeCloseTo(
      1.4 / 1.5,
      12,
    );
    // nothing idle: the hog took everything it was left, whatever others used
    expect(hogShareOfLeftover({ hogCores: 1.2, hostIdle: 0, hostCpus: 2 })).toBe(1);
    // the hog held back to 0.5 cores with 1.5 cores idle
    expect(hogShareOfLeftover({ hogCores: 0.5, hostIdle: 0.75, hostCpus: 2 })).toBe(0.25);
  });
});
