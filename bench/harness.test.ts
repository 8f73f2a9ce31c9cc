import { describe, expect, it } from "vitest";
import { figureLine, parseChoiceListOption, parseRepsOption, realBenchReps } from "./harness.ts";

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

describe("parseRepsOption", () => {
  it("--reps takes a positive integer and names the flag when it is wrong", () => {
    expect(parseRepsOption(["--quick"])).toBeUndefined();
    expect(parseRepsOption(["--reps", "5"])).toBe(5);
    expect(() => parseRepsOption(["--reps", "0"])).toThrow(/--reps.*positive integer.*"0"/);
    expect(() => parseRepsOption(["--reps"])).toThrow(/--reps/);
  });
});

describe("figureLine", () => {
  it("gives the median's range and count, and never says ok for a simulated figure", () => {
    const f = { name: "x", value: 2, unit: "ms", target: "<= 3 ms", meets: true };
    expect(figureLine(f)).toBe("x: 2 ms (target <= 3 ms)  ok");
    expect(figureLine({ ...f, reps: 5, range: [1, 4] })).toBe(
      "x: 2 ms [1–4] (median of 5) (target <= 3 ms)  ok",
    );
    expect(figureLine({ ...f, simulated: true, reps: 5, range: [2, 2] })).toBe(
      "x: 2 ms [2] (median of 5) (target <= 3 ms)  sim: would meet",
    );
    expect(figureLine({ ...f, meets: false, simulated: true })).toBe(
      "x: 2 ms (target <= 3 ms)  sim: would miss",
    );
  });
});

describe("parseChoiceListOption", () => {
  const choices = ["udp", "tcp"] as const;
  it("gives the names in the order given, undefined without the flag", () => {
    expect(parseChoiceListOption(["--x", "tcp,udp"], "--x", choices)).toEqual(["tcp", "udp"]);
    expect(parseChoiceListOption(["--quick"], "--x", choices)).toBeUndefined();
  });
  it("names the flag, the choices and what it got when a name is not one of them", () => {
    expect(() => parseChoiceListOption(["--x", "udp,quic,tls"], "--x", choices)).toThrow(
      '--x: a comma-separated list of udp, tcp; got "quic,tls"',
    );
    expect(() => parseChoiceListOption(["--x"], "--x", choices)).toThrow(/got null/);
    expect(() => parseChoiceListOption(["--x", ","], "--x", choices)).toThrow(/got ","/);
  });
});
