import { describe, expect, it } from "vitest";
import type { Directive } from "../core/model.ts";
import { checkDirective } from "./engine.ts";

const directive = (capCpuMillis: number, weight: number, burstCpuMillis = 0): Directive => ({
  partition: "p",
  cpuMillis: 100,
  weight,
  idle: false,
  capCpuMillis,
  burstCpuMillis,
  capReason: "capped",
  cpuCount: 1,
});

describe("checkDirective", () => {
  it("rejects NaN and -Infinity caps, non-finite weights and bad bursts", () => {
    expect(checkDirective(directive(Number.NaN, 100))).toMatch(/capCpuMillis .* NaN/);
    expect(checkDirective(directive(Number.NEGATIVE_INFINITY, 100))).toMatch(/capCpuMillis/);
    expect(checkDirective(directive(100, Number.NaN))).toMatch(/weight .* NaN/);
    expect(checkDirective(directive(100, 100, -1))).toMatch(/burstCpuMillis .* -1/);
    expect(checkDirective(directive(Number.POSITIVE_INFINITY, 100))).toBeNull();
  });
});
