import { describe, expect, it } from "vitest";
import { realBenchReps } from "./harness.ts";

const ctx = (over: { quick?: boolean; reps?: number }) => ({
  progress: () => {},
  quick: false,
  ...over,
});

describe("realBenchReps", () => {
  it.runIf(process.getuid?.() === 0)(
    "takes --reps, else 1 with --quick, else 5; 1..50 only",
    () => {
      expect(realBenchReps("x", ctx({}))).toBe(5);
      expect(realBenchReps("x", ctx({ quick: true }))).toBe(1);
      expect(realBenchReps("x", ctx({ quick: true, reps: 7 }))).toBe(7);
      expect(() => realBenchReps("x", ctx({ reps: 51 }))).toThrow(
        "bench x: --reps must be an integer in 1..50, got 51",
      );
    },
  );
  it.runIf(process.getuid?.() !== 0)("refuses to run without root", () => {
    expect(() => realBenchReps("x", ctx({}))).toThrow("bench x: needs root");
  });
});
