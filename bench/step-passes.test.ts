import { describe, expect, it } from "vitest";
import { formatSummary, passTimes, summarize } from "./step-passes.ts";

describe("passTimes", () => {
  it("times each pass from the mark before it and the output from the last mark", () => {
    const t = passTimes({
      startNs: 100,
      passes: ["arena", "rule", "demand", "express"],
      atNs: [110, 150, 200, 260],
      endNs: 275,
    });
    expect(t).toEqual({ arena: 10, rule: 40, demand: 50, express: 60, output: 15 });
  });
});

describe("summarize", () => {
  it("takes medians per pass, counting only the steps that ran a pass", () => {
    const step = (start: number, again: boolean) => ({
      startNs: start,
      passes: again ? (["rule", "demand", "demandAgain"] as const) : (["rule", "demand"] as const),
      atNs: again ? [start + 10, start + 30, start + 50] : [start + 10, start + 30],
      endNs: start + (again ? 55 : 35),
    });
    const s = summarize([step(0, false), step(1000, true), step(2000, false)]);
    expect(s.steps).toBe(3);
    expect(s.stepNs).toBe(35);
    expect(s.passes).toEqual([
      { pass: "rule", medianNs: 10, ran: 3 },
      { pass: "demand", medianNs: 20, ran: 3 },
      { pass: "demandAgain", medianNs: 20, ran: 1 },
      { pass: "output", medianNs: 5, ran: 3 },
    ]);
    const text = formatSummary(10, s).join("\n");
    expect(text).toContain("in 1 of 3 steps");
    expect(text).toMatch(/sum\s+0\.0 µs/);
  });
});
