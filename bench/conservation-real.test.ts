// conservation-real's own options (the runs need root and are benchmarks, not tests).
import { describe, expect, it } from "vitest";
import { parseScenariosOption } from "./conservation-real.ts";

describe("parseScenariosOption", () => {
  it("runs every scenario by default, the step alone with --scenarios step", () => {
    expect(parseScenariosOption([])).toBe("all");
    expect(parseScenariosOption(["--reps", "5"])).toBe("all");
    expect(parseScenariosOption(["--scenarios", "step", "--reps", "5"])).toBe("step");
    expect(parseScenariosOption(["--scenarios", "all"])).toBe("all");
  });

  it("refuses anything else, naming what it got", () => {
    expect(() => parseScenariosOption(["--scenarios", "overload"])).toThrow(
      '--scenarios: "all" or "step", got "overload"',
    );
    expect(() => parseScenariosOption(["--scenarios"])).toThrow("got null");
  });
});
