import { describe, expect, it } from "vitest";
import { sameDirective } from "./directive.ts";
import type { Directive } from "./model.ts";

// Every field set (`Required` makes the compiler ask for a field added to Directive), each
// value different from the one `changed` gives it.
const full: Required<Directive> = {
  partition: "p1",
  cpuMillis: 400,
  weight: 2353,
  idle: false,
  capCpuMillis: 500,
  burstCpuMillis: 50,
  capReason: "max",
  capPeriodUs: 100_000,
  cpuCount: 1,
};
const changed: Required<Directive> = {
  partition: "p2",
  cpuMillis: 401,
  weight: 2354,
  idle: true,
  capCpuMillis: 501,
  burstCpuMillis: 51,
  capReason: "suppress-batch",
  capPeriodUs: 200_000,
  cpuCount: 2,
};

describe("sameDirective", () => {
  it("is true for equal fields in different objects", () => {
    expect(sameDirective(full, { ...full })).toBe(true);
  });

  it.each(Object.keys(full) as Array<keyof Directive>)("compares %s", (k) => {
    expect(sameDirective(full, { ...full, [k]: changed[k] })).toBe(false);
  });

  it("tells an absent capPeriodUs from a set one", () => {
    const { capPeriodUs: _, ...noPeriod } = full;
    expect(sameDirective(noPeriod, full)).toBe(false);
    expect(sameDirective(noPeriod, { ...noPeriod })).toBe(true);
  });
});
